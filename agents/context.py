"""Typed context that the loop hands to the roles and the roles hand to the templates.

Briefs are compact views of archive records: what a model needs to reason about an
experiment (motivation, code, a metrics summary, the analysis), not the whole eval.json.
"""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.answers import Proposal
from knowledge.records import Experiment, Insight

INSIGHT_SNIPPET_CHARS = 700
REASON_CHARS = 500
SIGNIFICANT_DIGITS = 4
METRIC_FIELDS = ("parameters", "train_tokens_per_second", "inference_latency_ms", "peak_memory_bytes")


class Brief(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskBrief(Brief):
    """The task being optimised and the family contract, shown verbatim."""

    name: str
    family: str
    description: str
    contract: str


class ExperimentBrief(Brief):
    id: str
    name: str
    motivation: str = ""
    plan: str = ""
    code: str = ""
    status: str = ""
    reason: str = ""
    fitness: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    analysis: str = ""

    @classmethod
    def from_experiment(cls, experiment: Experiment) -> "ExperimentBrief":
        return cls(
            id=experiment.id,
            name=experiment.name,
            motivation=experiment.motivation,
            plan=experiment.plan,
            code=experiment.code,
            status=experiment.status,
            reason=experiment.reason[:REASON_CHARS],
            fitness=experiment.fitness.value if experiment.fitness else None,
            metrics=summarize_metrics(experiment.metrics),
            analysis=summarize_analysis(experiment.analysis),
        )


class InsightBrief(Brief):
    title: str
    text: str
    source: str = ""
    experiment_id: str | None = None  # the experiment it was learned from (its age, when a prompt is trimmed)

    @classmethod
    def from_insight(cls, insight: Insight, max_chars: int = INSIGHT_SNIPPET_CHARS) -> "InsightBrief":
        text = insight.text if len(insight.text) <= max_chars else insight.text[:max_chars].rstrip() + " ..."
        return cls(title=insight.title, text=text, source=insight.source, experiment_id=insight.experiment_id)


class Neighbour(Brief):
    """An archived experiment whose motivation is close to a rejected one."""

    name: str
    motivation: str
    similarity: float


class RejectedMotivation(Brief):
    """A proposal the novelty gate turned down, with what it was too close to."""

    motivation: str
    name: str = ""
    neighbours: list[Neighbour] = Field(default_factory=list)


class CheckFailure(Brief):
    """The failing check's report, as the repair prompt shows it."""

    check: str
    reason: str
    line: int | None = None


class ResearcherContext(Brief):
    task: TaskBrief
    parent: ExperimentBrief | None = None
    references: list[ExperimentBrief] = Field(default_factory=list)
    insights: list[InsightBrief] = Field(default_factory=list)
    rejected: list[RejectedMotivation] = Field(default_factory=list)
    idea: str | None = None  # a person's injected idea, to be developed first


class CoderContext(Brief):
    task: TaskBrief
    proposal: Proposal
    parent: ExperimentBrief | None = None  # edits refer to parent.code


class RepairContext(Brief):
    task: TaskBrief
    proposal: Proposal
    code: str  # the current file; edits refer to it
    failure: CheckFailure
    attempt: int = Field(ge=1)
    max_attempts: int = Field(ge=1)


class AnalystContext(Brief):
    task: TaskBrief
    experiment: ExperimentBrief
    diff: str  # unified diff against the parent's code; empty without a parent
    parent: ExperimentBrief | None = None
    siblings: list[ExperimentBrief] = Field(default_factory=list)
    baseline: ExperimentBrief | None = None


class JudgeContext(Brief):
    task: TaskBrief
    experiment: ExperimentBrief
    references: list[ExperimentBrief] = Field(default_factory=list)


def code_diff(parent_code: str, code: str, parent_name: str = "parent", name: str = "candidate") -> str:
    """Unified diff of two candidate files, for the analyst and the review UI."""
    return "".join(
        difflib.unified_diff(
            parent_code.splitlines(keepends=True),
            code.splitlines(keepends=True),
            fromfile=f"{parent_name}.py",
            tofile=f"{name}.py",
        )
    )


def summarize_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures of an eval.json worth a model's attention, numbers rounded.

    Keeps task metrics, size and speed, the final training loss and failed checks;
    drops the full loss curve, logs and bookkeeping.
    """
    summary: dict[str, Any] = {}
    for name, value in (metrics.get("metrics") or {}).items():
        summary[name] = _round(value)
    for name in METRIC_FIELDS:
        if metrics.get(name) not in (None, {}, []):
            summary[name] = _round(metrics[name])
    curve = metrics.get("loss_curve") or []
    if curve:
        step, loss = curve[-1]
        summary["final_train_loss"] = _round(loss)
        summary["train_steps"] = step
    failed = [f"{c.get('name')}: {c.get('reason', '')[:REASON_CHARS]}" for c in metrics.get("checks", []) if not c.get("passed", True)]
    if failed:
        summary["failed_checks"] = failed
    return summary


def summarize_analysis(analysis: dict[str, Any]) -> str:
    """The analyst's summary and lessons as a few lines."""
    if not analysis:
        return ""
    lines = [str(analysis.get("summary", "")).strip()]
    lines += [f"- {lesson}" for lesson in analysis.get("lessons", [])]
    return "\n".join(line for line in lines if line)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {key: _round(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(item) for item in value]
    return value
