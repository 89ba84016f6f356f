"""Variation operators over genomes: point mutation, crossover, and a move toward the elites.

Each is a pure function of its inputs and a seeded `random.Random`, so a proposal can be
replayed exactly. They may return a genome that is already archived; `search.py` checks
that and asks again.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from agents.offline.genome import GENE_BY_NAME, GENES, Genome, constraint_violations, repair

ORDINAL_GENES = frozenset({"conv", "key_expand", "head_mult", "local_window", "chunk"})
NEIGHBOUR_PROBABILITY = 0.7   # an ordinal gene usually steps to an adjacent value, sometimes jumps
ELITE_FRACTION = 0.25         # the top quarter of scored genomes (at least MIN_ELITES) are the elites
MIN_ELITES = 2
SMOOTHING = 0.5               # pseudo-count per value when estimating gene distributions


@dataclass(frozen=True)
class ScoredGenome:
    """An archived genome with its fitness: what the elite statistics are computed from."""

    experiment_id: str
    genome: Genome
    fitness: float


@dataclass(frozen=True)
class ValueShare:
    """How common a gene value is among the elites and among all scored genomes."""

    gene: str
    value: Any
    elite_count: int
    elite_share: float    # smoothed, like overall_share
    overall_share: float


@dataclass(frozen=True)
class EliteStatistics:
    elites: tuple[ScoredGenome, ...]
    scored: int
    shares: dict[str, dict[Any, ValueShare]]  # gene -> value -> share


def point_mutation(parent: Genome, rng: random.Random, weights: dict[str, float], genes: int = 1) -> Genome:
    """Change `genes` distinct genes, picked in proportion to `weights`; dependents are repaired.

    Two mutations can cancel through a repair (update -> delta, then key_norm -> none); such a
    draw is repeated, so the child always differs from the parent."""
    child = parent
    while child == parent:
        values = parent.to_dict()
        for gene in _weighted_sample(list(weights), [weights[name] for name in weights], genes, rng):
            values[gene] = _new_value(gene, values[gene], rng)
            values = repair(values, keep=gene)
        child = Genome.from_dict(values)
    return child


def crossover(parent: Genome, partner: Genome, rng: random.Random) -> Genome:
    """Uniform crossover: each differing gene comes from either side with equal chance, at least
    one from each side when they differ in two genes or more."""
    differing = sorted(parent.differences(partner))
    if not differing:
        return parent
    taken = [gene for gene in differing if rng.random() < 0.5]
    if not taken:
        taken = [rng.choice(differing)]
    if len(taken) == len(differing) and len(differing) > 1:
        taken.remove(rng.choice(taken))
    values = parent.to_dict()
    for gene in taken:
        values[gene] = partner.to_dict()[gene]
    kept = [gene for gene in differing if gene not in taken]
    # Repairing a dependent gene can undo the mix (delta taken, key_norm none kept -> the partner);
    # then let a kept gene win instead.
    for keep in [None] + kept:
        child = Genome.from_dict(repair(values, keep=keep))
        if child not in (parent, partner):
            return child
    return child


def toward_elites(parent: Genome, statistics: EliteStatistics, rng: random.Random,
                  weights: dict[str, float], genes: int = 1) -> Genome:
    """Estimation-of-distribution step: move genes toward values over-represented among the
    elites (present there, with a larger share than overall), in proportion to the excess.

    Returns the parent unchanged when no gene has such a value to move to."""
    current = parent.to_dict()
    excess = {name: {value: share.elite_share - share.overall_share
                     for value, share in statistics.shares[name].items()
                     if value != current[name] and share.elite_count > 0
                     and share.elite_share > share.overall_share}
              for name in weights}
    pull = {name: weights[name] * sum(excess[name].values()) for name in weights}
    values = dict(current)
    for gene in _weighted_sample(list(pull), list(pull.values()), genes, rng):
        options = list(excess[gene])
        values[gene] = rng.choices(options, weights=[excess[gene][value] for value in options])[0]
        values = repair(values, keep=gene)
    return Genome.from_dict(values)


def elite_statistics(scored: Sequence[ScoredGenome]) -> EliteStatistics:
    """Smoothed per-gene value shares among the top genomes by fitness and among all of them."""
    if not scored:
        raise ValueError("elite statistics need at least one scored genome")
    ranked = sorted(scored, key=lambda item: (-item.fitness, item.experiment_id))
    elites = tuple(ranked[:max(MIN_ELITES, math.ceil(ELITE_FRACTION * len(ranked)))])
    shares = {}
    for gene in GENES:
        elite_counts = Counter(item.genome.to_dict()[gene.name] for item in elites)
        all_counts = Counter(item.genome.to_dict()[gene.name] for item in ranked)
        prior = SMOOTHING * len(gene.choices)
        shares[gene.name] = {
            value: ValueShare(gene.name, value, elite_counts[value],
                              (elite_counts[value] + SMOOTHING) / (len(elites) + prior),
                              (all_counts[value] + SMOOTHING) / (len(ranked) + prior))
            for value in gene.choices
        }
    return EliteStatistics(elites=elites, scored=len(ranked), shares=shares)


def random_genome(rng: random.Random) -> Genome:
    """Uniform over the valid design space (rejection sampling over the gene product)."""
    while True:
        values = {gene.name: rng.choice(gene.choices) for gene in GENES}
        if not constraint_violations(values):
            return Genome.from_dict(values)


def _new_value(gene: str, current: Any, rng: random.Random) -> Any:
    choices = GENE_BY_NAME[gene].choices
    others = [value for value in choices if value != current]
    if gene in ORDINAL_GENES and rng.random() < NEIGHBOUR_PROBABILITY:
        index = choices.index(current)
        return rng.choice([choices[i] for i in (index - 1, index + 1) if 0 <= i < len(choices)])
    return rng.choice(others)


def _weighted_sample(items: list[str], weights: list[float], count: int, rng: random.Random) -> list[str]:
    """`count` distinct items drawn without replacement in proportion to their weights."""
    pool = [(item, weight) for item, weight in zip(items, weights) if weight > 0]
    chosen = []
    for _ in range(min(count, len(pool))):
        item = rng.choices([name for name, _ in pool], weights=[weight for _, weight in pool])[0]
        chosen.append(item)
        pool = [(name, weight) for name, weight in pool if name != item]
    return chosen
