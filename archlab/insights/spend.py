"""Where a run's money and time went: LLM dollars and tokens by role, compute seconds by step,
and each experiment's time split into training and everything else.

Step timings are wall seconds recorded per experiment (agents/steps.py); `train` is the sandbox's
training time summed over seeds and lies inside `evaluate`, so it is shown as part of it, never
added on top.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from archlab.insights.snapshot import RunSnapshot
from archlab.rundir import open_for_reading
from knowledge.records import LLMCall

STEP_ORDER = ("propose", "code", "evaluate", "analyze")
TRAIN = "train"


@dataclass(frozen=True)
class RoleSpend:
    role: str                     # researcher, coder, analyst, judge
    models: tuple[str, ...]
    calls: int
    failed: int                   # calls that ended in an error
    prompt_tokens: int
    completion_tokens: int
    usd: float
    seconds: float                # summed call latency

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class StepTime:
    step: str                     # propose, code, evaluate (of which: train), analyze, ...
    seconds: float
    experiments: int              # experiments that spent time in it


@dataclass(frozen=True)
class ExperimentTime:
    id: str
    train_s: float
    other_s: float                # every step's time minus training


@dataclass(frozen=True)
class SpendBreakdown:
    roles: tuple[RoleSpend, ...]
    steps: tuple[StepTime, ...]
    experiments: tuple[ExperimentTime, ...]   # creation order, experiments with any time recorded

    @property
    def llm_usd(self) -> float:
        return sum(r.usd for r in self.roles)

    @property
    def llm_tokens(self) -> int:
        return sum(r.tokens for r in self.roles)

    @property
    def train_s(self) -> float:
        return sum(e.train_s for e in self.experiments)

    @property
    def other_s(self) -> float:
        return sum(e.other_s for e in self.experiments)


def by_role(calls: Iterable[LLMCall]) -> tuple[RoleSpend, ...]:
    groups: dict[str, list[LLMCall]] = {}
    for call in calls:
        groups.setdefault(call.role, []).append(call)
    found = [RoleSpend(role=role, models=tuple(sorted({c.model for c in members})), calls=len(members),
                       failed=sum(bool(c.error) for c in members),
                       prompt_tokens=sum(c.prompt_tokens for c in members),
                       completion_tokens=sum(c.completion_tokens for c in members),
                       usd=sum(c.cost_usd for c in members), seconds=sum(c.latency_s for c in members))
             for role, members in groups.items()]
    return tuple(sorted(found, key=lambda r: (-r.usd, -r.tokens, r.role)))


def run_calls(snapshot: RunSnapshot) -> list[LLMCall]:
    """Every LLM call of the run, oldest first (the archive opened read-only)."""
    with open_for_reading(snapshot.run_dir) as archive:
        return archive.llm_calls(run=snapshot.name)


def spend_breakdown(snapshot: RunSnapshot, calls: Iterable[LLMCall]) -> SpendBreakdown:
    """`calls`: the run's LLM calls (`run_calls`)."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    per_experiment = []
    for exp in snapshot.experiments:
        for step, seconds in exp.timings.items():
            totals[step] = totals.get(step, 0.0) + seconds
            counts[step] = counts.get(step, 0) + 1
        train = exp.timings.get(TRAIN, 0.0)
        steps = sum(v for k, v in exp.timings.items() if k != TRAIN)
        if exp.timings:
            per_experiment.append(ExperimentTime(id=exp.id, train_s=train, other_s=max(0.0, steps - train)))
    order = [s for s in STEP_ORDER if s in totals] + sorted(s for s in totals if s not in STEP_ORDER and s != TRAIN)
    if TRAIN in totals:
        order.insert(order.index("evaluate") + 1 if "evaluate" in order else len(order), TRAIN)
    steps = tuple(StepTime(step=s, seconds=totals[s], experiments=counts[s]) for s in order)
    return SpendBreakdown(roles=by_role(calls), steps=steps, experiments=tuple(per_experiment))
