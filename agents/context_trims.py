"""What each role's prompt may lose when it exceeds the model's budget, least important first
(agents.llm.budget applies the plan). The task and the contract are never in a plan; neither
is what a role cannot work without (the repair's failing file and report, the proposal).
"""
from __future__ import annotations

from typing import Any, Callable

from agents.context import (AnalystContext, Brief, CoderContext, ExperimentBrief, InsightBrief, JudgeContext,
                            RepairContext, ResearcherContext)
from agents.llm.budget import Trim


def trims_for(context: Brief) -> list[Trim[Any]]:
    plans: dict[type, Callable[[Any], list[Trim[Any]]]] = {
        ResearcherContext: researcher_trims, CoderContext: coder_trims, AnalystContext: analyst_trims,
        JudgeContext: judge_trims, RepairContext: lambda _: [],
    }
    return plans[type(context)](context)


def researcher_trims(context: ResearcherContext) -> list[Trim[ResearcherContext]]:
    """Older insights, then reference code, then the parent's analysis; as a last resort whole
    references and the parent's code (the researcher then works from motivations and figures)."""
    trims: list[Trim[ResearcherContext]] = [_drop_insight(i) for i in oldest_insights_first(context.insights)]
    trims += [_drop_reference_code(r) for r in reversed(context.references) if r.code]
    if context.parent is not None and context.parent.analysis:
        trims.append(Trim(f"analysis of parent {context.parent.id}",
                          lambda c: c.model_copy(update={"parent": _without(c.parent, analysis="")})))
    trims += [_drop_reference(r) for r in reversed(context.references)]
    if context.parent is not None and context.parent.code:
        trims.append(Trim(f"code of parent {context.parent.id}",
                          lambda c: c.model_copy(update={"parent": _without(c.parent, code="")})))
    return trims


def coder_trims(context: CoderContext) -> list[Trim[CoderContext]]:
    """Only the parent file can go (the coder then writes the whole file from the plan)."""
    if context.parent is None or not context.parent.code:
        return []
    return [Trim(f"code of parent {context.parent.id} (the coder writes the whole file)",
                 lambda c: c.model_copy(update={"parent": _without(c.parent, code="")}))]


def analyst_trims(context: AnalystContext) -> list[Trim[AnalystContext]]:
    """Siblings, the last first, then the parent's motivation."""
    trims: list[Trim[AnalystContext]] = [
        Trim(f"sibling {s.id} ({s.name})", lambda c, s=s: c.model_copy(update={"siblings": [x for x in c.siblings if x.id != s.id]}))
        for s in reversed(context.siblings)]
    if context.parent is not None and context.parent.motivation:
        trims.append(Trim(f"motivation of parent {context.parent.id}",
                          lambda c: c.model_copy(update={"parent": _without(c.parent, motivation="")})))
    return trims


def judge_trims(context: JudgeContext) -> list[Trim[JudgeContext]]:
    trims: list[Trim[JudgeContext]] = [_drop_reference_code(r) for r in reversed(context.references) if r.code]
    return trims + [_drop_reference(r) for r in reversed(context.references)]


def oldest_insights_first(insights: list[InsightBrief]) -> list[InsightBrief]:
    """Findings of experiments, earliest experiment first; then notes of no experiment (the
    cognition base, a person's notes), least relevant first (search returns the best first)."""
    dated = sorted((i for i in insights if i.experiment_id), key=lambda i: i.experiment_id or "")
    return dated + [i for i in reversed(insights) if not i.experiment_id]


def _drop_insight(insight: InsightBrief) -> Trim[Any]:
    origin = f" (from {insight.experiment_id})" if insight.experiment_id else f" ({insight.source})" if insight.source else ""
    return Trim(f"insight '{insight.title}'{origin}",
                lambda c: c.model_copy(update={"insights": [i for i in c.insights if i != insight]}))


def _drop_reference_code(reference: ExperimentBrief) -> Trim[Any]:
    return Trim(f"code of reference {reference.id} ({reference.name})", lambda c: c.model_copy(update={
        "references": [_without(r, code="") if r.id == reference.id else r for r in c.references]}))


def _drop_reference(reference: ExperimentBrief) -> Trim[Any]:
    return Trim(f"reference {reference.id} ({reference.name})", lambda c: c.model_copy(update={
        "references": [r for r in c.references if r.id != reference.id]}))


def _without(brief: ExperimentBrief | None, **blank: str) -> ExperimentBrief | None:
    return brief.model_copy(update=blank) if brief is not None else None
