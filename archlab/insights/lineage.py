"""The lineage tree of a run: every experiment under its parent, failed and rejected ones included.

Laid out for drawing: depth is the generation (references are roots at depth 0), and `order`
places leaves one apart with each parent centred over its children, so no edges cross.
"""
from __future__ import annotations

from typing import Sequence

from archlab.insights.records import LineageNode
from archlab.insights.snapshot import RunSnapshot
from archlab.insights.summary import outcome
from knowledge.records import Experiment


def lineage(snapshot: RunSnapshot) -> list[LineageNode]:
    """Nodes in drawing order (depth first, children by id). Laid out again only when what the
    layout reads of some experiment changed (a copy each call): a running run's writes of
    tokens, timings or metrics keep it."""
    memo = snapshot.memo
    return list(memo.of_run("lineage", lambda: memo.of_inputs(
        "lineage", memo.of_each("drawn", snapshot.experiments, _drawn),
        lambda: tuple(lineage_of(snapshot.experiments)))))


def _drawn(exp: Experiment) -> tuple:
    """Everything `lineage_of` reads of an experiment (keep the two in step)."""
    return (exp.id, exp.parent_id, exp.name, outcome(exp), exp.fitness.value if exp.fitness else None,
            exp.proposer == "reference", exp.finished)


def best_lineages(snapshot: RunSnapshot, top: int = 5) -> list[LineageNode]:
    """The tree of the `top` fittest proposals (flagged ones left out) and their ancestors only:
    how the best designs were reached, without the dead ends around them."""
    scored = sorted((e for e in snapshot.proposals if e.fitness is not None and not e.fitness.flagged),
                    key=lambda e: (-e.fitness.value, e.id))[:top]
    kept: set[str] = set()
    for exp in scored:
        while exp is not None and exp.id not in kept:
            kept.add(exp.id)
            exp = snapshot.by_id.get(exp.parent_id) if exp.parent_id else None
    return lineage_of([e for e in snapshot.experiments if e.id in kept])


def lineage_of(experiments: Sequence[Experiment]) -> list[LineageNode]:
    """`lineage` of any set of experiments in creation order; a parent outside the set makes a root.
    Iterative: a chain of thousands of generations does not hit Python's recursion limit."""
    known = {e.id: e for e in experiments}
    children: dict[str | None, list[str]] = {}
    for exp in experiments:
        parent = exp.parent_id if exp.parent_id in known and exp.parent_id != exp.id else None
        children.setdefault(parent, []).append(exp.id)
    depth: dict[str, int] = {}
    order: dict[str, float] = {}
    visit: list[str] = []      # preorder
    # roots first; then anything a parent cycle (a corrupt archive) kept out of reach, as a root
    for root in [*children.get(None, []), *(e.id for e in experiments)]:
        stack = [(root, 0)]
        while stack:
            exp_id, level = stack.pop()
            if exp_id in depth:
                continue
            depth[exp_id] = level
            visit.append(exp_id)
            stack.extend((child, level + 1) for child in reversed(children.get(exp_id, [])))
    next_leaf = 0.0
    for exp_id in visit:       # leaves in preorder get consecutive places
        if not children.get(exp_id):
            order[exp_id] = next_leaf
            next_leaf += 1.0
    for exp_id in reversed(visit):  # parents after all their descendants
        kids = [c for c in children.get(exp_id, []) if c in order]
        if kids:
            order[exp_id] = (order[kids[0]] + order[kids[-1]]) / 2
    nodes = []
    for exp_id in visit:
        exp = known[exp_id]
        nodes.append(LineageNode(
            id=exp.id, name=exp.name, parent_id=exp.parent_id if exp.parent_id in depth else None,
            depth=depth[exp_id], order=order[exp_id], outcome=outcome(exp),
            fitness=exp.fitness.value if exp.fitness else None, reference=exp.proposer == "reference", finished=exp.finished,
            children=tuple(children.get(exp_id, []))))
    return nodes
