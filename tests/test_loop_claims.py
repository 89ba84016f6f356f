"""Experiments in flight at once never claim the same genome or the same code: checking that
one is new and recording it is one step, even when both drafts are ready at the same moment."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agents.lab import Lab
from agents.offline.search import reference_genomes
from agents.steps import code_step, propose_step
from agents.team import ProposalDraft, Team
from agents.team_offline import OfflineAnalyst, OfflineResearcher
from evaluator.references import get_reference
from knowledge.records import Experiment, Fitness, Stage
from tests.loop_support import BASELINE_NAME, lab_in

RUN = "claims"
BASELINE = get_reference(BASELINE_NAME)


class InLockstep:
    """Both experiments' first drafts are handed over together, as two workers would race."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=30)
        self.calls: dict[str, int] = {}

    def first_call(self, exp_id: str) -> bool:
        self.calls[exp_id] = self.calls.get(exp_id, 0) + 1
        if self.calls[exp_id] == 1:
            self.barrier.wait()
            return True
        return False


class SameFirstGenome(InLockstep):
    uses_novelty_gate = False

    def propose(self, lab, exp, parent, references, rejected, ideas) -> ProposalDraft:
        genome = {"conv": 4} if self.first_call(exp.id) else {"conv": 2, "drafted_for": exp.id}
        return ProposalDraft(name=f"draft-{exp.id}", motivation=f"motivation {exp.id}", plan="plan",
                             proposer="scripted", genome=genome)


class SameCode(InLockstep):
    needs_smoke_checks = False

    def write(self, lab, exp, parent) -> str:
        self.first_call(exp.id)
        return BASELINE.path.read_text()

    def repair(self, lab, exp, code, failure, attempt):
        return None


@pytest.fixture
def lab(tmp_path: Path):
    team = Team(SameFirstGenome(), SameCode(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME, "softmax_attention")
    with lab_in(tmp_path, team, RUN) as lab:
        yield lab


def _together(step, lab: Lab, *exp_ids: str) -> None:
    threads = [threading.Thread(target=step, args=(lab, exp_id)) for exp_id in exp_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()


def test_two_drafts_of_one_genome_at_once_give_two_genomes(lab: Lab):
    for exp_id in ("e0002", "e0003"):
        lab.archive.add_experiment(Experiment(id=exp_id, run=RUN))
    _together(propose_step, lab, "e0002", "e0003")

    second, third = lab.archive.get_experiment("e0002"), lab.archive.get_experiment("e0003")
    assert second.stage is third.stage is Stage.PROPOSED
    assert second.genome != third.genome  # the later claim saw the first and drafted again
    assert sorted(lab.team.researcher.calls.values()) == [1, 2]
    assert [e.message for e in lab.archive.events(kind="novelty")] == \
        [f"genome just proposed by an experiment in flight: draft-{exp_id}"
         for exp_id, calls in lab.team.researcher.calls.items() if calls == 2]


def test_two_identical_files_at_once_are_coded_once(lab: Lab):
    for exp_id in ("e0002", "e0003"):
        lab.archive.add_experiment(Experiment(id=exp_id, run=RUN, stage=Stage.PROPOSED, name=exp_id, motivation="m"))
    _together(code_step, lab, "e0002", "e0003")

    stages = sorted(lab.archive.get_experiment(i).stage.value for i in ("e0002", "e0003"))
    assert stages == ["coded", "failed"]
    [failed] = [e for e in lab.archive.experiments(run=RUN) if e.stage is Stage.FAILED]
    assert failed.reason.startswith("duplicate: the code is the same as")


def test_an_idea_without_gene_settings_is_noted_once_though_drafted_again(lab: Lab):
    """A proposal re-drafted after a clash reads the person's idea again; the note says it once."""
    parent = lab.archive.add_experiment(Experiment(
        id="e0002", run=RUN, name="gated_delta_rule", proposer="reference", stage=Stage.ANALYZED, status="ok",
        fitness=Fitness(value=0.0), genome=reference_genomes()["gated_delta_rule"].to_dict()))
    exp = lab.archive.add_experiment(Experiment(id="e0003", run=RUN))
    researcher = OfflineResearcher()
    for ideas in (["try something bolder"], ["try something bolder"], ["try something bolder", "conv=2 please"]):
        researcher.propose(lab, exp, parent, [], [], ideas)
    researcher.propose(lab, exp, parent, [], [], ["try something bolder", "now bolder still"])
    notes = [(e.message, e.data["idea"]) for e in lab.archive.events(experiment_id="e0003") if e.kind == "idea"]
    assert notes == [("idea names no gene settings (gene=value); proposal re-drawn instead", "try something bolder"),
                     ("idea names no gene settings (gene=value); proposal re-drawn instead", "now bolder still")]
