"""Quality against cost: the Pareto front of fitness against parameters, training throughput and
inference latency at the longest measured length.

A design is on the front when no other design is at least as good in both fitness and the cost
and strictly better in one. Only scored designs that are not flagged as implausible take part;
references do, so the front says whether the search found anything the hand-written mixers do not
already offer at that cost.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from archlab.insights.records import ExperimentRow
from archlab.insights.snapshot import RunSnapshot
from archlab.insights.summary import row_of


@dataclass(frozen=True)
class Cost:
    key: str                      # the ExperimentRow field
    label: str
    lower_is_better: bool
    log_scale: bool


COSTS = (Cost("params", "parameters", True, True), Cost("tokens_per_s", "training tokens/s", False, True),
         Cost("latency_ms", "inference latency (ms, longest length)", True, True))


@dataclass(frozen=True)
class ParetoPoint:
    id: str
    name: str
    fitness: float
    cost: float
    reference: bool
    on_front: bool


@dataclass(frozen=True)
class ParetoFront:
    cost: Cost
    points: tuple[ParetoPoint, ...]   # every scored design with this cost measured, cheapest first

    @property
    def front(self) -> tuple[ParetoPoint, ...]:
        return tuple(p for p in self.points if p.on_front)


def front_of(rows: list[ExperimentRow], cost: Cost) -> ParetoFront:
    measured = [(r, getattr(r, cost.key)) for r in rows if getattr(r, cost.key) is not None]
    points = [ParetoPoint(id=r.id, name=r.name, fitness=r.fitness, cost=float(c), reference=r.reference,
                          on_front=False) for r, c in measured]
    # sweep from the cheapest (at equal cost the fitter first): a point is on the front when it is
    # fitter than everything at its cost or cheaper
    ordered = sorted(points, key=lambda p: (p.cost if cost.lower_is_better else -p.cost, -p.fitness))
    marked, best = [], None
    for point in ordered:
        on_front = best is None or point.fitness > best
        marked.append(dataclasses.replace(point, on_front=on_front))
        if on_front:
            best = point.fitness
    return ParetoFront(cost=cost, points=tuple(marked))


def pareto_fronts(snapshot: RunSnapshot) -> tuple[ParetoFront, ...]:
    rows = [row_of(e) for e in snapshot.experiments
            if e.fitness is not None and not e.fitness.flagged and e.status == "ok"]
    return tuple(front_of(rows, cost) for cost in COSTS)
