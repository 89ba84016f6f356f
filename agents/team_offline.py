"""The offline team: proposals from the structured design space, code rendered from templates,
factual analyses. No network, no LLM: the baseline that LLM-driven search must beat."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.context import CheckFailure, RejectedMotivation
from agents.offline.analyst import analyze
from agents.offline.genome import Genome, GenomeError
from agents.offline.ideas import gene_settings
from agents.offline.render import render_candidate
from agents.offline.search import develop_idea, propose
from agents.parents import selection_seed
from agents.team import ProposalDraft
from knowledge.novelty import code_hash
from knowledge.records import Experiment

if TYPE_CHECKING:
    from agents.lab import Lab


RENDER_DUPLICATE_TRIES = 8


@dataclass
class OfflineResearcher:
    uses_novelty_gate: bool = False  # the search itself never repeats an archived genome

    def propose(self, lab: "Lab", exp: Experiment, parent: Experiment, references: list[Experiment],
                rejected: list[RejectedMotivation], ideas: list[str]) -> ProposalDraft:
        archive = [e for e in lab.archive.experiments(run=lab.run) if e.id != exp.id]
        archived_code = {e.code_hash for e in archive if e.code_hash}
        idea = ideas[-1] if ideas else ""
        settings = self._settings(lab, exp, idea)
        for attempt in range(RENDER_DUPLICATE_TRIES):
            # a person's new idea changes the seed, so "idea" in review yields a different proposal
            seed = selection_seed(lab.config.seed, f"{exp.id}/{len(ideas)}/{attempt}")
            proposal = develop_idea(archive, settings, idea, seed, parent) if settings \
                else propose(archive, seed, parent, references)
            # distinct genomes can render the same file (a gene that is moot given the others)
            if code_hash(render_candidate(proposal.genome, name=proposal.name)) not in archived_code:
                break
        return ProposalDraft(name=proposal.name, motivation=proposal.motivation, plan=proposal.plan,
                             proposer="offline", genome=proposal.genome.to_dict(), parent_id=proposal.parent_id,
                             reference_ids=list(proposal.reference_ids))

    @staticmethod
    def _settings(lab: "Lab", exp: Experiment, idea: str) -> dict[str, Any]:
        """The gene settings of a person's idea; free text alone only re-draws the proposal."""
        if not idea:
            return {}
        try:
            settings = gene_settings(idea)
        except GenomeError as error:  # `archlab review` checks ideas; this one came another way
            _note_once(lab, exp, idea, f"idea not usable by the offline researcher: {error}")
            return {}
        if not settings:
            _note_once(lab, exp, idea, "idea names no gene settings (gene=value); proposal re-drawn instead")
        return settings


def _note_once(lab: "Lab", exp: Experiment, idea: str, message: str) -> None:
    """Say what became of an idea once, though a proposal re-drafted after a clash reads it again."""
    if not any(e.kind == "idea" and e.data.get("idea") == idea for e in lab.archive.events(experiment_id=exp.id)):
        lab.log(exp.id, "idea", message, idea=idea)


@dataclass
class OfflineCoder:
    """Renders the genome; the templates are tested to satisfy the contract, and the evaluation
    itself runs every check, so no separate smoke run is spent here."""

    needs_smoke_checks: bool = False

    def write(self, lab: "Lab", exp: Experiment, parent: Experiment | None) -> str:
        return render_candidate(Genome.from_dict(exp.genome), name=exp.name)

    def repair(self, lab: "Lab", exp: Experiment, code: str, failure: CheckFailure, attempt: int) -> str | None:
        return None  # a template that fails a check is a bug to fix in the templates, not per candidate


@dataclass
class OfflineAnalyst:
    def analyze(self, lab: "Lab", exp: Experiment, parent: Experiment | None, siblings: list[Experiment],
                baseline: Experiment | None) -> dict[str, Any]:
        return analyze(exp, parent, siblings, baseline).model_dump()
