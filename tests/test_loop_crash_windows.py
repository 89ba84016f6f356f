"""A kill -9 can land between a step's archive write and LangGraph's checkpoint: the step then
runs again on resume and must see that its work is done, never wait or loop forever."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from agents.driver import Driver, graph_input
from agents.graph import build_graph
from agents.lab import Lab
from agents.review import pending_decision
from agents.team import Team
from agents.team_offline import OfflineAnalyst, OfflineCoder, OfflineResearcher
from evaluator.references import get_reference
from knowledge.records import Event, Experiment, Stage
from tests.loop_support import BASELINE_NAME, lab_in

RUN = "crash"
CONFIG = {"configurable": {"thread_id": "e0002"}}
BEFORE_TRAINING = {"interrupt_before": ["evaluate"]}  # the tests stop where training would start


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, not even LangGraph's checkpoint of the node."""


def open_lab(tmp_path: Path, review: bool):
    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME,
                "softmax_attention")
    return lab_in(tmp_path, team, RUN, review=review)


@pytest.fixture
def graph_of(tmp_path: Path):
    checkpoints = sqlite3.connect(tmp_path / "checkpoints.sqlite", check_same_thread=False)
    yield lambda lab: build_graph(lab, SqliteSaver(checkpoints))
    checkpoints.close()


def add_coded_candidate(lab: Lab) -> None:
    lab.archive.add_experiment(Experiment(id="e0002", run=RUN, name="coded", motivation="m", plan="p",
                                          code=get_reference(BASELINE_NAME).path.read_text(), stage=Stage.CODED))


def die_after_approving(lab: Lab, monkeypatch) -> None:
    approve = lab.update

    def approve_then_die(exp_id: str, **fields):
        approve(exp_id, **fields)
        if fields.get("stage") is Stage.APPROVED:
            raise Killed()

    monkeypatch.setattr(lab, "update", approve_then_die)


def resume(lab: Lab, graph) -> None:
    """What the driver does with the experiment next, up to where training would start."""
    graph.invoke(graph_input(lab, graph, "e0002", CONFIG), CONFIG, **BEFORE_TRAINING)


def decide_and_resume(lab: Lab, graph, action: str) -> None:
    """A person's decision, recorded as `archlab review` records it, then taken up by the driver."""
    lab.archive.log_event(Event(run=RUN, kind="review_decision", message=action, experiment_id="e0002",
                                data={"action": action}))
    resume(lab, graph)


def test_a_review_cut_short_after_approving_goes_on_to_the_evaluation(tmp_path, graph_of, monkeypatch):
    with open_lab(tmp_path, review=False) as lab:
        add_coded_candidate(lab)
        graph = graph_of(lab)
        die_after_approving(lab, monkeypatch)
        with pytest.raises(Killed):
            resume(lab, graph)
        monkeypatch.undo()
        assert lab.archive.get_experiment("e0002").stage is Stage.APPROVED
        assert graph.get_state(CONFIG).next == ("review",)  # resume re-runs the node that was in flight

        resume(lab, graph)
        state = graph.get_state(CONFIG)
        assert state.next == ("evaluate",) and not state.interrupts  # not waiting for a review nobody asked for


def test_a_decision_cut_short_while_applied_is_applied_once_on_resume(tmp_path, graph_of, monkeypatch):
    with open_lab(tmp_path, review=True) as lab:
        add_coded_candidate(lab)
        graph = graph_of(lab)
        resume(lab, graph)
        assert lab.archive.get_experiment("e0002").stage is Stage.AWAITING_REVIEW

        die_after_approving(lab, monkeypatch)
        with pytest.raises(Killed):  # approved in the archive, but not yet marked applied
            decide_and_resume(lab, graph, "approve")
        monkeypatch.undo()
        resume(lab, graph)
        assert graph.get_state(CONFIG).next == ("evaluate",)
        assert pending_decision(lab, "e0002") is None
        assert [e.message for e in lab.archive.events(experiment_id="e0002") if e.kind == "review_applied"] == ["approve"]


def test_a_decision_applied_just_before_a_kill_is_not_awaited_again(tmp_path, graph_of, monkeypatch):
    with open_lab(tmp_path, review=True) as lab:
        add_coded_candidate(lab)
        graph = graph_of(lab)
        resume(lab, graph)
        log = lab.log

        def log_then_die(exp_id, kind, message, **data):
            log(exp_id, kind, message, **data)
            if kind == "review_applied":
                raise Killed()

        monkeypatch.setattr(lab, "log", log_then_die)
        with pytest.raises(Killed):  # applied and marked so; LangGraph's checkpoint never came
            decide_and_resume(lab, graph, "approve")
        monkeypatch.undo()
        assert pending_decision(lab, "e0002") is None and graph.get_state(CONFIG).next == ("review",)

        resume(lab, graph)
        state = graph.get_state(CONFIG)
        assert state.next == ("evaluate",) and not state.interrupts
        assert [e.message for e in lab.archive.events(experiment_id="e0002") if e.kind == "review_applied"] == ["approve"]


class GoesNowhere:
    """A graph that returns without moving its experiment on: a bug the driver must survive."""

    def __init__(self) -> None:
        self.calls = 0

    def get_state(self, config):
        return type("State", (), {"next": ()})()

    def invoke(self, payload, config):
        self.calls += 1


def test_an_experiment_left_where_it_was_is_failed_not_handed_back_forever(tmp_path):
    with open_lab(tmp_path, review=False) as lab:
        add_coded_candidate(lab)
        graph = GoesNowhere()
        driving = threading.Thread(target=Driver(lab, graph)._drive, kwargs={"only": {"e0002"}}, daemon=True)
        driving.start()
        driving.join(timeout=30)
        assert not driving.is_alive(), "the driver kept handing the same experiment to the graph"
        exp = lab.archive.get_experiment("e0002")
        assert exp.stage is Stage.FAILED
        assert exp.reason == "internal error: the graph ended at stage coded without progress"
        assert graph.calls == 1
