"""The LLM team: researcher, coder and analyst as language-model roles (agents.roles)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.answers import Proposal, judge_weight
from agents.context import (AnalystContext, CheckFailure, CoderContext, ExperimentBrief, InsightBrief,
                            JudgeContext, RejectedMotivation, RepairContext, ResearcherContext, TaskBrief, code_diff)
from agents.llm.bandit import fitness_gain
from agents.llm.code_answer import WrittenCode
from agents.roles import Roles
from agents.team import ProposalDraft
from knowledge.archive import Archive
from knowledge.records import Experiment, Stage

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
        model = self.roles.client.choose("researcher", exp.id).model  # the model that answered (kept per experiment)
        return ProposalDraft(name=answer.name, motivation=answer.motivation, plan=answer.plan, proposer=f"llm:{model}")


@dataclass
class LLMCoder:
    roles: Roles
    task: TaskBrief
    needs_smoke_checks: bool = True

    def write(self, lab: "Lab", exp: Experiment, parent: Experiment | None) -> str:
        written = self.roles.write_code(CoderContext(task=self.task, proposal=_proposal(exp), parent=_brief(parent)),
                                        experiment_id=exp.id)
        return _logged(lab, exp, written, "written")

    def repair(self, lab: "Lab", exp: Experiment, code: str, failure: CheckFailure, attempt: int) -> str | None:
        context = RepairContext(task=self.task, proposal=_proposal(exp), code=code, failure=failure,
                                attempt=attempt, max_attempts=max(1, lab.config.search.repair_tries))
        return _logged(lab, exp, self.roles.repair(context, experiment_id=exp.id), f"repair {attempt}")


def _logged(lab: "Lab", exp: Experiment, written: WrittenCode, what: str) -> str:
    """The code; how the answer was read (whole file or edits, near-misses tolerated) goes to the log."""
    notes = "; ".join(written.notes)
    lab.log(exp.id, "coder", f"{what}: {'edits applied' if written.mode == 'edit' else 'whole file'}"
                             f"{': ' + notes if notes else ''}", mode=written.mode, notes=list(written.notes))
    return written.code


@dataclass
class LLMAnalyst:
    roles: Roles
    task: TaskBrief

    def analyze(self, lab: "Lab", exp: Experiment, parent: Experiment | None, siblings: list[Experiment],
                baseline: Experiment | None) -> dict[str, Any]:
        settle_models(self.roles, lab.archive, exp, parent)
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


def settle_models(roles: Roles, archive: Archive, exp: Experiment, parent: Experiment | None) -> None:
    """Credit the experiment's fitness gain over its parent, and what its proposal and code
    cost, to the models that made them (the bandit's outcome)."""
    gain = fitness_gain(exp.fitness.value if exp.fitness else None,
                        parent.fitness.value if parent is not None and parent.fitness else None)
    roles.client.models.settle(exp.id, gain, archive.llm_calls(experiment_id=exp.id))


def settle_history(roles: Roles, archive: Archive, run: str) -> None:
    """On resume: the outcomes of the run's analysed LLM experiments, as if observed again."""
    experiments = {e.id: e for e in archive.experiments(run=run)}
    for exp in experiments.values():
        if exp.stage is Stage.ANALYZED and exp.proposer.startswith("llm:"):
            settle_models(roles, archive, exp, experiments.get(exp.parent_id or ""))
