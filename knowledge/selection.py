"""Choosing parents and references from the archive: pure, seeded functions, no I/O.

Greedy selection (always breed from the best) collapses the search onto one lineage, so
parents come either from UCT over the lineage tree (good fitness, but subtrees already tried
often lose priority) or from a quality-diversity grid (the best of a randomly chosen niche
of size and scaling). Both rank by quality: fitness normalised to [0, 1] over the eligible,
times the judge's selection weight when a judge ran (1 otherwise). Same input and seed, same choice. Inputs are lists of full experiments
or of the light `ExperimentBrief`s of `Archive.briefs()` (the fast path on a large archive).
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from functools import cached_property
from itertools import repeat
from operator import attrgetter
from typing import TypeVar

import numpy as np

from knowledge.descriptors import brief_of
from knowledge.records import Experiment, ExperimentBrief, Stage

REFERENCE = "reference"
EVALUATED = frozenset({Stage.EVALUATED, Stage.ANALYZED})
ENDED_BEFORE_EVALUATION = frozenset({Stage.FAILED, Stage.REJECTED})
DESCRIPTORS = ("log10_params", "complexity_exponent", "latency_ms")
DEFAULT_QD_AXES: Mapping[str, float] = {"log10_params": 0.25, "complexity_exponent": 0.1}
Candidate = TypeVar("Candidate", Experiment, ExperimentBrief)


class NoParentError(ValueError):
    """Nothing in the archive may be a parent."""


def can_be_parent(brief: ExperimentBrief) -> bool:
    """Evaluated ok with a plausible fitness; references also before their evaluation.

    Failed, leaky, invalid or flagged results are never bred from. (`_Table` computes the same
    rule for a whole archive at once; a test holds the two together.)
    """
    if brief.flagged:
        return False
    if brief.proposer == REFERENCE and brief.status == "" and brief.stage not in ENDED_BEFORE_EVALUATION:
        return True
    return brief.status == "ok" and brief.stage in EVALUATED and brief.fitness is not None \
        and math.isfinite(brief.fitness)


def _column(briefs: Sequence[ExperimentBrief], name: str, dtype: type = object) -> np.ndarray:
    values = map(attrgetter(name), briefs)
    if dtype is float:  # None becomes NaN
        return np.array(list(values), dtype=float)
    return np.fromiter(values, dtype=dtype, count=len(briefs))


def _is(column: np.ndarray, value: object) -> np.ndarray:
    """Elementwise ==; the value is boxed so numpy compares objects (a bare str-Enum is coerced)."""
    return column == np.array([value], dtype=object)


class _Table:
    """The input as columns (numpy), built once per call: 100k records in tens of milliseconds."""

    def __init__(self, items: Sequence[Experiment | ExperimentBrief]):
        briefs = [brief_of(item) for item in items] if items and isinstance(items[0], Experiment) else items
        self.briefs: Sequence[ExperimentBrief] = briefs
        self.size = len(briefs)
        status, stage = _column(briefs, "status"), _column(briefs, "stage")
        fitness = _column(briefs, "fitness", float)
        unstarted_reference = _is(_column(briefs, "proposer"), REFERENCE) & _is(status, "") \
            & ~_is(stage, Stage.FAILED) & ~_is(stage, Stage.REJECTED)
        evaluated_ok = _is(status, "ok") & (_is(stage, Stage.EVALUATED) | _is(stage, Stage.ANALYZED)) \
            & np.isfinite(fitness)
        self.eligible = (unstarted_reference | evaluated_ok) & ~_column(briefs, "flagged", bool)
        self.value = np.where(np.isfinite(fitness), fitness, 0.0)  # an unevaluated reference: the baseline
        self.weight = _column(briefs, "selection_weight", float)

    def quality(self, indices: np.ndarray) -> np.ndarray:
        """Fitness of `indices` scaled to [0, 1] among them, times the judge's weight."""
        values = self.value[indices]
        span = values.max() - values.min()
        normalised = (values - values.min()) / span if span > 0 else np.full(len(values), 0.5)
        return normalised * self.weight[indices]

    @cached_property
    def parent(self) -> np.ndarray:
        """Position of each record's parent; -1 for roots and parents missing from the input."""
        position = dict(zip(map(attrgetter("id"), self.briefs), range(self.size)))
        return np.fromiter(map(position.get, map(attrgetter("parent_id"), self.briefs), repeat(-1)),
                           dtype=np.int64, count=self.size)

    def eligible_indices(self) -> np.ndarray:
        found = np.flatnonzero(self.eligible)
        if not len(found):
            raise NoParentError("no experiment can be a parent: none evaluated ok and no reference candidates; "
                                "seed the archive with the references first")
        return found

    @cached_property
    def _order(self) -> list[int]:
        """Parents before children; input order when it already is (the archive's creation order)."""
        if np.all(self.parent < np.arange(self.size)):
            return list(range(self.size))
        children: list[list[int]] = [[] for _ in range(self.size)]
        for child, parent in enumerate(self.parent.tolist()):
            if parent >= 0:
                children[parent].append(child)
        order = np.flatnonzero(self.parent < 0).tolist()
        for node in order:  # grows while iterating: breadth-first (nodes on a cycle are left out)
            order.extend(children[node])
        return order

    def descendants(self) -> np.ndarray:
        """Every descendant counts, whatever its outcome and including those in flight: each is a try
        spent on the subtree, and counting in-flight ones keeps parallel workers from piling onto
        the same parent. Parents missing from the input make their children roots."""
        parent = self.parent.tolist()
        counts = [0] * self.size
        for i in reversed(self._order):
            if parent[i] >= 0:
                counts[parent[i]] += counts[i] + 1
        return np.array(counts)

    def roots(self) -> np.ndarray:
        parent = self.parent.tolist()
        root = list(range(self.size))
        for i in self._order:
            if parent[i] >= 0:
                root[i] = root[parent[i]]
        return np.array(root)


def _pick_best(scores: np.ndarray, indices: np.ndarray, rng: random.Random) -> int:
    tied = indices[scores >= scores.max() - 1e-12]
    return int(tied[rng.randrange(len(tied))])


def sample_parent_uct(experiments: Sequence[Candidate], rng_seed: int, c: float = 0.5) -> Candidate:
    """The eligible experiment of highest UCT score: quality (see `_Table.quality`) plus
    c * sqrt(ln(1 + N) / (1 + descendants)), N the number of experiments. Ties broken by the seed."""
    table = _Table(experiments)
    eligible = table.eligible_indices()
    exploration = c * np.sqrt(math.log(1 + table.size) / (1 + table.descendants()[eligible]))
    return experiments[_pick_best(table.quality(eligible) + exploration, eligible, random.Random(rng_seed))]


def qd_cell(brief: ExperimentBrief, axes: Mapping[str, float] = DEFAULT_QD_AXES) -> tuple[int, ...]:
    """The grid cell of an experiment: one bin per axis (fixed widths, so cells never move as
    the archive grows); a missing descriptor gets its own bin (-1)."""
    cell = []
    for axis, width in axes.items():
        value = getattr(brief, axis)
        cell.append(-1 if value is None else math.floor(value / width))
    return tuple(cell)


def sample_parent_qd(experiments: Sequence[Candidate], rng_seed: int,
                     axes: Mapping[str, float] = DEFAULT_QD_AXES) -> Candidate:
    """MAP-Elites: pick an occupied cell uniformly, return its elite (best quality in the cell;
    the earliest on a tie)."""
    if not axes or set(axes) - set(DESCRIPTORS) or any(width <= 0 for width in axes.values()):
        raise ValueError(f"QD axes map descriptors {DESCRIPTORS} to positive bin widths, got {dict(axes)}")
    table = _Table(experiments)
    eligible = table.eligible_indices()
    cells = [np.nan_to_num(np.floor(_column(table.briefs, axis, float)[eligible] / width), nan=-1).astype(np.int64)
             for axis, width in axes.items()]
    # sort by cell, then best quality first, then position: the first row of each cell is its elite
    order = np.lexsort((eligible, -table.quality(eligible), *reversed(cells)))
    grid = np.stack(cells, axis=1)[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(grid[1:] != grid[:-1], axis=1)
    elites = eligible[order[first]]
    return experiments[int(elites[random.Random(rng_seed).randrange(len(elites))])]


def pareto_indices(experiments: Sequence[Candidate]) -> list[int]:
    """Positions of the eligible experiments on the quality-cost front: no other eligible one has
    higher fitness and lower latency at the longest length (at least as good on both, better on one).
    Those without a measured latency (unevaluated references) are left out; the front is read from the
    archive's columns, so it is always that of the archive as it stands."""
    table = _Table(experiments)
    eligible = [int(i) for i in table.eligible_indices() if table.briefs[int(i)].latency_ms is not None]
    points = [(i, float(table.value[i]), float(table.briefs[i].latency_ms)) for i in eligible]
    return [i for i, q, c in points
            if not any(q2 >= q and c2 <= c and (q2 > q or c2 < c) for _, q2, c2 in points)]


def sample_parent_pareto(experiments: Sequence[Candidate], rng_seed: int) -> Candidate:
    """A uniformly drawn member of the quality-cost front (UCT when nothing has a latency yet)."""
    front = pareto_indices(experiments)
    if not front:
        return sample_parent_uct(experiments, rng_seed)
    return experiments[front[random.Random(rng_seed).randrange(len(front))]]


def sample_parent(experiments: Sequence[Candidate], rng_seed: int, strategy: str = "mixed") -> Candidate:
    """"uct", "qd", "pareto", or "mixed": UCT for even seeds, QD for odd ones (alternating when the
    seed counts experiments)."""
    if strategy == "uct" or (strategy == "mixed" and rng_seed % 2 == 0):
        return sample_parent_uct(experiments, rng_seed)
    if strategy in ("qd", "mixed"):
        return sample_parent_qd(experiments, rng_seed)
    if strategy == "pareto":
        return sample_parent_pareto(experiments, rng_seed)
    raise ValueError(f"unknown parent strategy {strategy!r}; use 'uct', 'qd', 'pareto' or 'mixed'")


def sample_references(experiments: Sequence[Candidate], parent: Experiment | ExperimentBrief | None,
                      k: int, seed: int) -> list[Candidate]:
    """Up to k good experiments for the researcher to borrow from, unlike the parent.

    Candidates: eligible as parents, not the parent, not the parent's structure, one per
    structure. Drawn from the best 4k by a seeded rank-weighted lottery, preferring lineages
    other than the parent's and each other's.
    """
    if k <= 0:
        return []
    table = _Table(experiments)
    parent_brief = brief_of(parent) if isinstance(parent, Experiment) else parent
    root = table.roots()
    position = {brief.id: i for i, brief in enumerate(table.briefs)} if parent_brief else {}
    taken_roots = {int(root[position[parent_brief.id]])} if parent_brief and parent_brief.id in position else set()
    seen_structures = {parent_brief.structure_hash} if parent_brief and parent_brief.structure_hash else set()
    eligible = np.flatnonzero(table.eligible)
    pool: list[int] = []
    for i in eligible[np.argsort(-table.value[eligible], kind="stable")].tolist():
        brief = table.briefs[i]
        if (parent_brief and brief.id == parent_brief.id) or brief.structure_hash in seen_structures:
            continue
        if brief.structure_hash:
            seen_structures.add(brief.structure_hash)
        pool.append(i)
        if len(pool) >= max(4 * k, 8):
            break
    rng = random.Random(seed)
    # Efraimidis-Spirakis weighted shuffle, weight 1 / (rank + 1): better ranks tend to come first.
    keys = {i: rng.random() ** (rank + 1) for rank, i in enumerate(pool)}
    lottery = sorted(pool, key=lambda i: -keys[i])
    chosen: list[int] = []
    for i in lottery:  # first, one per lineage other than the parent's
        if len(chosen) < k and int(root[i]) not in taken_roots:
            chosen.append(i)
            taken_roots.add(int(root[i]))
    chosen += [i for i in lottery if i not in chosen][:k - len(chosen)]
    return [experiments[i] for i in chosen]
