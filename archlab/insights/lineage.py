"""The lineage tree of a run: every experiment under its parent, failed and rejected ones included.

Laid out for drawing: depth is the generation (references are roots at depth 0), and `order`
places leaves one apart with each parent centred over its children, so no edges cross.
"""
from __future__ import annotations

from archlab.insights.records import LineageNode
from archlab.insights.snapshot import RunSnapshot
from archlab.insights.summary import outcome


def lineage(snapshot: RunSnapshot) -> list[LineageNode]:
    """Nodes in drawing order (depth first, children by id). Iterative: a chain of thousands of
    generations does not hit Python's recursion limit."""
    experiments = snapshot.experiments
    known = snapshot.by_id
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
