"""The LLM team: researcher, coder and analyst as language-model roles (agents.roles)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.answers import Proposal, judge_weight
from agents.context import (AnalystContext, CheckFailure, CoderContext, ExperimentBrief, InsightBrief,
                            JudgeContext, RejectedMotivation, RepairContext, ResearcherContext, TaskBrief, code_diff)
from agents.edits import EditError
from agents.roles import Roles
from agents.team import CoderGaveUp, ProposalDraft
from knowledge.records import Experiment

if TYPE_CHECKING:
    from agents.lab import Lab


def _brief(exp: Experiment | None) -> ExperimentBrief | None:
    return ExperimentBrief.from_experiment(exp) if exp is not None else None


def _proposal(exp: Experiment) -> Proposal:
    return Proposal(name=exp.name, motivation=exp.motivation, plan=exp.plan)


@dataclass
class LLMResearcher:
    roles: Roles
    task: TaskBrief
    proposer: str
    uses_novelty_gate: bool = True

    def propose(self, lab: "Lab", exp: Experiment, parent: Experiment, references: list[Experiment],
                rejected: list[RejectedMotivation], ideas: list[str]) -> ProposalDraft:
        query = f"{self.task.description}\n{parent.motivation}\n{parent.analysis.get('summary', '')}"
        hits = lab.store.search_insights(query, k=lab.config.search.insights)
        context = ResearcherContext(
            task=self.task, parent=_brief(parent), references=[_brief(r) for r in references],
            insights=[InsightBrief.from_insight(hit.insight) for hit in hits], rejected=rejected,
            idea="\n".join(ideas) or None,
        )
        answer = self.roles.propose(context, experiment_id=exp.id)
        return ProposalDraft(name=answer.name, motivation=answer.motivation, plan=answer.plan, proposer=self.proposer)


@dataclass
class LLMCoder:
    roles: Roles
    task: TaskBrief
    needs_smoke_checks: bool = True

    def write(self, lab: "Lab", exp: Experiment, parent: Experiment | None) -> str:
        answer = self.roles.write_code(CoderContext(task=self.task, proposal=_proposal(exp), parent=_brief(parent)),
                                       experiment_id=exp.id)
        base = parent.code if parent else ""
        try:
            return answer.apply_to(base)
        except EditError as error:  # one repair round to fix the edit, then give up
            repaired = self.repair(lab, exp, base, CheckFailure(check="apply edits", reason=str(error)), attempt=1)
            if repaired is None:
                raise CoderGaveUp(f"the coder's edits did not apply to the parent: {error}") from error
            return repaired

    def repair(self, lab: "Lab", exp: Experiment, code: str, failure: CheckFailure, attempt: int) -> str | None:
        context = RepairContext(task=self.task, proposal=_proposal(exp), code=code, failure=failure,
                                attempt=attempt, max_attempts=max(1, lab.config.search.repair_tries))
        answer = self.roles.repair(context, experiment_id=exp.id)
        try:
            return answer.apply_to(code)
        except EditError:
            return None


@dataclass
class LLMAnalyst:
    roles: Roles
    task: TaskBrief

    def analyze(self, lab: "Lab", exp: Experiment, parent: Experiment | None, siblings: list[Experiment],
                baseline: Experiment | None) -> dict[str, Any]:
        context = AnalystContext(
            task=self.task, experiment=_brief(exp), diff=code_diff(parent.code, exp.code) if parent else "",
            parent=_brief(parent), siblings=[_brief(s) for s in siblings[:4]], baseline=_brief(baseline),
        )
        analysis = self.roles.analyze(context, experiment_id=exp.id).model_dump()
        weights = lab.config.search.judge
        if weights is not None:
            references = [_brief(r) for r in (lab.archive.get_experiment(i) for i in exp.reference_ids)]
            scores = self.roles.judge(JudgeContext(task=self.task, experiment=_brief(exp), references=references),
                                      experiment_id=exp.id)
            analysis["judge"] = {**scores.model_dump(), "weight": judge_weight(scores, weights)}
        return analysis
