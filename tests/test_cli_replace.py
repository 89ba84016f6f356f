"""`review --replace`: the experiment then records the design that is trained (the person's name,
note and file, no genome), and the analyst compares that file, not the discarded proposal."""
from __future__ import annotations

import argparse
import json

from agents.config import RunConfig
from agents.review import ReviewDecision, apply_review
from agents.steps import analyze_step
from agents.offline.search import reference_genomes
from agents.team_factory import make_team
from archlab.commands.review import _replacement
from evaluator.references import get_reference
from knowledge.records import Experiment, Fitness, Stage
from tests.cli_support import cli
from tests.loop_candidates import RUNNING_MAX
from tests.loop_support import BASELINE_NAME, lab_in

RUN = "demo"


def _proposal(lab) -> None:
    """The baseline with its file, and an offline proposal waiting for review."""
    lab.archive.update_experiment("e0001", code=get_reference(BASELINE_NAME).path.read_text(),
                                  fitness=Fitness(value=0.0, stderr=0.01, seeds=2))
    genome = reference_genomes()[BASELINE_NAME].to_dict()
    lab.archive.add_experiment(Experiment(
        id="e0002", run=RUN, name="gdr_conv4_wide", proposer="offline", parent_id="e0001", genome={**genome},
        motivation="widen the short convolution to sharpen recall", plan="conv 0 -> 4", stage=Stage.AWAITING_REVIEW,
        code="# the proposal's rendered file\n"))


def test_a_replaced_candidate_is_the_persons_design(tmp_path):
    team = make_team(RunConfig(name=RUN), None, RUN, None)  # the offline team needs no archive
    mine = tmp_path / "running_max.py"
    mine.write_text(RUNNING_MAX)
    with lab_in(tmp_path, team, RUN, review=True) as lab:
        _proposal(lab)
        (tmp_path / "config.json").write_text(lab.config.model_copy(update={"runs_dir": tmp_path}).model_dump_json())
        recorded = cli("review", str(tmp_path), "e0002", "--replace", str(mine), "--note",
                       "a running max keeps the strongest match seen so far", cwd=tmp_path)
        assert recorded.returncode == 0, recorded.stderr
        decision = ReviewDecision.model_validate(
            [e.data for e in lab.archive.events(experiment_id="e0002") if e.kind == "review_decision"][0])
        assert (decision.name, decision.note) == ("running_max", "a running max keeps the strongest match seen so far")

        apply_review(lab, "e0002", decision)
        exp = lab.archive.get_experiment("e0002")
        assert (exp.name, exp.proposer, exp.genome, exp.stage) == ("running_max", "person", None, Stage.APPROVED)
        assert exp.motivation == decision.note and "gdr_conv4_wide" in exp.plan and exp.code == RUNNING_MAX
        assert (tmp_path / "experiments" / "e0002" / "candidate.py").read_text() == RUNNING_MAX

        lab.update("e0002", stage=Stage.EVALUATED, status="ok", fitness=Fitness(value=0.03, stderr=0.01))
        analyze_step(lab, "e0002")
        analysis = lab.archive.get_experiment("e0002").analysis
    text = json.dumps(analysis)
    assert "A person's file, given in review, was trained (running_max)" in analysis["tried"]
    assert "lines added and" in analysis["tried"] and "against the parent e0001's file" in analysis["tried"]
    assert "not as genes" in analysis["why"]
    assert any("running_max" in lesson and "vs the parent" in lesson for lesson in analysis["lessons"])
    assert "conv" not in text and "gdr_conv4_wide" not in text  # nothing about the discarded proposal's genes


def test_replace_takes_the_files_docstring_when_no_note_is_given(tmp_path):
    path = tmp_path / "candidate.py"  # edited in place in the experiment's folder
    path.write_text(RUNNING_MAX)
    args = argparse.Namespace(replace=path, note=None, name=None)
    decision = _replacement(args, "e0007")
    assert decision.note.startswith("Running maximum of projected features")
    assert decision.name == "e0007-person"
