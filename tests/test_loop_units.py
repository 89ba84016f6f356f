"""The loop's small pure pieces: routing by stage, review decisions, configuration, device slots."""
from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.graph import END
from pydantic import ValidationError

from agents.config import RunConfig
from agents.graph import next_node
from agents.review import ReviewDecision
from agents.session import make_executor
from archlab.config import load_config
from archlab.errors import UsageError
from knowledge.records import Stage
from sandbox.executors import LocalPool


@pytest.mark.parametrize("stage, has_proposal, expected", [
    (Stage.PROPOSED, False, "propose"),
    (Stage.PROPOSED, True, "code"),
    (Stage.CODED, True, "review"),
    (Stage.AWAITING_REVIEW, True, "review"),
    (Stage.APPROVED, True, "evaluate"),
    (Stage.EVALUATED, True, "analyze"),
    (Stage.ANALYZED, True, END),
    (Stage.FAILED, True, END),
    (Stage.REJECTED, True, END),
])
def test_the_recorded_stage_decides_the_next_step(stage, has_proposal, expected):
    assert next_node(stage, has_proposal) == expected


def test_review_decisions_must_be_complete():
    with pytest.raises(ValidationError, match="needs the new code"):
        ReviewDecision(action="replace")
    with pytest.raises(ValidationError, match="needs the idea"):
        ReviewDecision(action="idea", note="  ")
    with pytest.raises(ValidationError):
        ReviewDecision(action="merge")
    assert ReviewDecision(action="reject", note="too similar").note == "too similar"


def test_defaults_run_offline_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {})
    assert config.llm is None and config.task == "mqar" and config.device_slots == ["cpu", "cpu"]


def test_the_example_config_is_valid_and_states_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(Path(__file__).resolve().parents[1] / "archlab.example.toml", {}) == load_config(None, {})


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "archlab.toml"
    path.write_text('task = "bytelm"\nworkers = 3\n[search]\nrepair_tries = 5\n[llm]\nmodels = { default = "openai/m" }\n')
    config = load_config(path, {"workers": 1, "search.cascade_seeds": 0, "budget": None})
    assert (config.task, config.workers, config.search.repair_tries, config.search.cascade_seeds) == ("bytelm", 1, 5, 0)
    assert config.llm.model_for("coder") == "openai/m"


@pytest.mark.parametrize("text, fragment", [
    ("workers = 0\n", "workers"),
    ("colour = 'blue'\n", "colour"),
    ("[search]\nstrategy = 'greedy'\n", "search.strategy"),
    ("task = \n", "not valid TOML"),
    ("name = 'has space'\n", "name"),
])
def test_bad_config_says_what_to_fix(tmp_path, text, fragment):
    path = tmp_path / "archlab.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment):
        load_config(path, {})


def test_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_config(tmp_path / "nope.toml", {})


def test_the_executor_follows_the_config():
    cpus = make_executor(RunConfig(workers=3))
    gpus = make_executor(RunConfig(devices=["cuda:0", "cuda:1"], workers=4))
    try:
        assert isinstance(cpus, LocalPool) and cpus.slots == ["cpu"] * 3 and cpus.capacity == 3
        assert gpus.slots == ["cuda:0", "cuda:1"] and gpus.capacity == 2  # one evaluation per GPU
    finally:
        cpus.shutdown()
        gpus.shutdown()
    assert RunConfig(devices=["cuda:0"], ray="local").ray_device_kind == "cuda"
    assert RunConfig(ray="auto").ray_device_kind == "cpu"


def test_a_proposal_earns_cascade_seeds_by_beating_the_baseline_and_every_proposal_not_the_ceiling(tmp_path: Path):
    from agents.scoring import cascade_bar
    from agents.team import Team
    from agents.team_offline import OfflineAnalyst, OfflineCoder, OfflineResearcher
    from knowledge.records import Experiment, Fitness
    from tests.loop_support import BASELINE_NAME, lab_in

    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME)
    with lab_in(tmp_path, team, "bar") as lab:
        def add(exp_id: str, proposer: str, value: float | None) -> Experiment:
            exp = Experiment(id=exp_id, run="bar", name=exp_id, proposer=proposer, stage=Stage.EVALUATED,
                             status="ok", fitness=None if value is None else Fitness(value=value))
            lab.archive.add_experiment(exp)
            return exp
        ceiling = add("e0002", "reference", 0.37)
        first = add("e0003", "offline", None)
        assert cascade_bar(lab, first) == 0.0  # no proposal yet: the baseline; the ceiling's 0.37 does not count
        assert cascade_bar(lab, add("e0004", "reference", None)) == 0.37  # a reference: the best so far
        add("e0005", "offline", -0.07)
        add("e0006", "offline", 0.05)
        assert cascade_bar(lab, add("e0007", "offline", None)) == 0.05
        assert cascade_bar(lab, lab.archive.get_experiment("e0006")) == 0.0  # scored again (a resume): not its own bar
        assert cascade_bar(lab, ceiling) == 0.05  # e0002 against the others: the best of e0001 (0.0) and e0006
