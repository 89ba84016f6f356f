"""Typed records of the archive: what the loop, the agents and the UI exchange with it.

The archive (SQLite) stores exactly these; nothing outside `knowledge/` writes SQL.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

from pydantic import BaseModel, Field


class Stage(str, Enum):
    """Where an experiment is in DESIGN.md §3. Each stage's output is recorded before the next starts."""

    PROPOSED = "proposed"      # researcher answered: name, motivation, plan
    CODED = "coded"            # coder produced a candidate that passed static + smoke checks
    AWAITING_REVIEW = "awaiting_review"
    APPROVED = "approved"
    EVALUATED = "evaluated"    # evaluator wrote its result
    ANALYZED = "analyzed"      # analyst wrote findings: the experiment is finished
    FAILED = "failed"          # a step failed for good; `reason` says why (finished too)
    REJECTED = "rejected"      # a person rejected it in review (finished too)


FINISHED_STAGES = frozenset({Stage.ANALYZED, Stage.FAILED, Stage.REJECTED})


class Fitness(BaseModel):
    """One scalar for selection with its uncertainty (standard error over seeds)."""

    value: float
    stderr: float = 0.0
    seeds: int = 1
    flagged: str = ""  # non-empty when the result is implausible (e.g. beats the quality ceiling by far)
    rung: str = ""     # the budget of the ladder's rung this fitness was measured at; "" = the run's budget
    components: dict[str, float] = Field(default_factory=dict)  # suite fitness: quality, efficiency, task:NAME
    notes: list[str] = Field(default_factory=list)  # how it was computed where that is not the usual way


class Provenance(BaseModel):
    """What an evaluation ran with beyond its eval.json, recorded by the orchestrator so that a
    replay can say plainly what differs (a newer torch, another corpus, fewer threads)."""

    torch: str = ""
    numpy: str = ""
    python: str = ""
    archlab: str = ""
    threads: int | None = None                # threads per evaluation: CPU reductions depend on it
    data: dict[str, str] = Field(default_factory=dict)  # seed -> sha256 of the data it trains and is judged on


class Experiment(BaseModel):
    id: str                                   # stable, e.g. "e0007"; unique in a run
    run: str
    name: str = ""
    proposer: str = ""                        # "offline", "llm:<model>", "person", "reference"
    motivation: str = ""
    plan: str = ""
    code: str = ""
    code_hash: str = ""                       # normalised: ignores whitespace and comments
    structure_hash: str = ""                  # also ignores identifier names
    parent_id: str | None = None
    reference_ids: list[str] = Field(default_factory=list)
    stage: Stage = Stage.PROPOSED
    status: str = ""                          # evaluator status (evaluator.records.Status value) once evaluated
    reason: str = ""                          # why it failed / was rejected; empty when ok
    metrics: dict[str, Any] = Field(default_factory=dict)   # the eval.json content
    fitness: Fitness | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)  # analyst's structured findings
    genome: dict[str, Any] | None = None      # offline researcher's design-space genome, when it proposed it
    timings: dict[str, float] = Field(default_factory=dict) # phase -> seconds
    provenance: Provenance | None = None      # the evaluation's environment and data hashes, once evaluated
    tokens: int = 0
    cost_usd: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.stage in FINISHED_STAGES


class LLMCall(BaseModel):
    run: str
    experiment_id: str | None
    role: str                                 # researcher, coder, analyst, judge
    model: str
    prompt: list[dict[str, Any]]              # chat messages as sent
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    error: str = ""
    created_at: float = 0.0
    cached_tokens: int = 0                    # prompt tokens the provider served from its cache (in prompt_tokens)
    meta: dict[str, Any] = Field(default_factory=dict)  # how the call was made: model choice, prompt trims, finish reason


class Event(BaseModel):
    run: str
    kind: str                                 # e.g. "stage", "failure", "budget", "resume"
    message: str
    experiment_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: float = 0.0


class Insight(BaseModel):
    """A short piece of text knowledge: an analyst finding, a cognition-base entry, or a user's note."""

    id: str
    title: str
    text: str
    source: str                               # "analysis", "cognition", "user"
    run: str = ""
    experiment_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ExperimentBrief(NamedTuple):
    """The few fields selection needs, read straight from indexed columns.

    Sampling a parent runs before every proposal; loading full experiments (code, metrics,
    analysis) for a 100k archive each time would dominate, so the archive serves these instead
    (a NamedTuple: immutable and cheap to build 100k times). Descriptors are None until the
    experiment has been evaluated.
    """

    id: str
    parent_id: str | None
    proposer: str
    stage: Stage
    status: str
    fitness: float | None
    flagged: bool = False             # fitness looked implausible (Fitness.flagged): never bred from
    structure_hash: str = ""
    log10_params: float | None = None
    complexity_exponent: float | None = None
    latency_ms: float | None = None
    selection_weight: float = 1.0     # the judge's multiplier on selection (1: no judge)
