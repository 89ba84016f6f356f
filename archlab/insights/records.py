"""Typed records of what a run looks like: what the web pages, the JSON API and the report show.

Plain frozen dataclasses of plain values, so `dataclasses.asdict` is their JSON form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExperimentRow:
    """One line of the experiments table (no code, no long text)."""

    id: str
    name: str
    proposer: str
    parent_id: str | None
    stage: str
    status: str
    outcome: str                  # the status once evaluated, else the stage (e.g. "rejected", "failed")
    fitness: float | None
    stderr: float | None
    seeds: int
    flagged: str
    params: int | None
    tokens_per_s: float | None    # training throughput
    latency_ms: float | None      # one forward at the longest measured length
    latency_length: int | None
    llm_tokens: int
    cost_usd: float
    reason: str                   # first line of why it failed or was rejected
    finished: bool
    reference: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class FitnessPoint:
    """A finished proposal in the order proposals finished: its fitness (None: it has none) and the best so far."""

    id: str
    name: str
    minutes: float                # since the run's first experiment
    index: int                    # 1-based position among finished proposals
    fitness: float | None
    stderr: float
    best_so_far: float | None
    outcome: str


@dataclass(frozen=True)
class FailureGroup:
    outcome: str                  # status (invalid, leaky, ...) or stage (failed, rejected)
    reason: str                   # the first experiment's reason, first line
    count: int
    ids: tuple[str, ...]


@dataclass(frozen=True)
class SpendSummary:
    llm_usd: float
    llm_tokens: int
    llm_calls: int
    train_s: float                # seconds spent training in the sandbox
    steps_s: float                # seconds spent in every step (propose, code, evaluate, analyse)


@dataclass(frozen=True)
class RunProgress:
    done: int
    planned: int
    in_flight: tuple[str, ...]
    awaiting: tuple[ExperimentRow, ...]
    elapsed_s: float
    eta_s: float | None           # only while a driver runs and something has finished

    @property
    def percent(self) -> float:
        return 100.0 * min(self.done, self.planned) / self.planned if self.planned else 100.0


@dataclass(frozen=True)
class RunSummary:
    name: str
    task: str
    budget: str
    researcher: str               # "offline" or the LLM model
    review: bool
    state: str                    # running, finished, stopped
    driver: str
    progress: RunProgress
    best: ExperimentRow | None
    baseline: ExperimentRow | None
    best_reference: ExperimentRow | None
    outcomes: tuple[tuple[str, int], ...]  # (outcome, count) over finished proposals, most common first
    fitness: tuple[FitnessPoint, ...]
    failures: tuple[FailureGroup, ...]
    spend: SpendSummary


@dataclass(frozen=True)
class RunListing:
    """A line of the runs list: read cheaply, without loading every experiment."""

    name: str
    task: str
    budget: str
    state: str                    # running, finished, stopped, new (no archive yet), unreadable
    done: int
    planned: int
    best_id: str | None
    best_name: str
    best_fitness: float | None
    llm_usd: float
    driver: str
    problem: str = ""


@dataclass(frozen=True)
class LineageNode:
    id: str
    name: str
    parent_id: str | None         # None for roots (references) and for parents outside the run
    depth: int
    order: float                  # vertical position: leaves 0, 1, 2, ...; a parent centred over its children
    outcome: str
    fitness: float | None
    reference: bool
    finished: bool
    children: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str
    seconds: float


@dataclass(frozen=True)
class Metric:
    name: str
    value: Any
    parent: Any = None            # the parent's value of the same metric, when known
    baseline: Any = None


@dataclass(frozen=True)
class ExperimentDetail:
    row: ExperimentRow
    motivation: str
    plan: str
    code: str
    reason: str                   # in full
    genome: dict[str, Any] | None
    parent: ExperimentRow | None
    references: tuple[ExperimentRow, ...]
    children: tuple[ExperimentRow, ...]
    diff: str                     # unified diff from the parent's code ("" when either has none)
    checks: tuple[Check, ...]
    metrics: tuple[Metric, ...]   # task metrics and costs, flattened ("accuracy_by_length.64")
    seeds: tuple[dict[str, Any], ...]
    loss_curve: tuple[tuple[int, float], ...]
    latency_ms: dict[int, float]
    baseline_latency_ms: dict[int, float]
    analysis: dict[str, Any]
    timings: dict[str, float]
    log_tail: str
    isolation: str
    files: tuple[str, ...]        # files in the experiment's folder, relative to it
    calls: tuple[Any, ...] = field(default=())   # knowledge.records.LLMCall, oldest first
    events: tuple[Any, ...] = field(default=())  # knowledge.records.Event, oldest first


@dataclass(frozen=True)
class Comparison:
    a: ExperimentDetail
    b: ExperimentDetail
    metrics: tuple[tuple[str, Any, Any], ...]   # (name, a's value, b's value) for every metric either has
    diff: str                                   # unified diff from a's code to b's
