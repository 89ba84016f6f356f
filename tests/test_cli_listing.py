"""Reading a run: `ls` with full names and stages, `--sort` and `--status` (bad values exit 2 listing the
choices), `show --diff` against the parent, `references` marking each task's baseline and ceiling, and
`resume --experiments N` extending a finished run (or saying why it does nothing)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.records import Experiment, Fitness, Stage
from tests.cli_support import cli, make_run
from tests.support.smoke_run import SMOKE_RUN, copy_run

LONG_NAME = "delta-head-decay-conv4-silu-gated-l2-rms-window64-chunk32-expand2-0f3a9c"
PARENT_CODE = "class Mixer:\n    def forward(self, x):\n        return x\n"
CHILD_CODE = "class Mixer:\n    def forward(self, x):\n        return 2 * x\n"


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    run_dir = make_run(tmp_path / "runs")
    with Archive.open(run_dir) as archive:
        archive.update_experiment("e0002", code=PARENT_CODE, metrics={"parameters": 120_000})
        archive.add_experiments([
            Experiment(id="e0004", run="demo", name=LONG_NAME, proposer="offline", parent_id="e0002",
                       code=CHILD_CODE, stage=Stage.ANALYZED, status="ok", fitness=Fitness(value=0.09, stderr=0.02),
                       metrics={"parameters": 150_000}),
            Experiment(id="e0005", run="demo", name="crashing_idea", proposer="offline", parent_id="e0002",
                       code=PARENT_CODE, stage=Stage.ANALYZED, status="crashed", reason="worker died"),
        ])
    return run_dir


def ids(listing: str) -> list[str]:
    return [line.split()[0] for line in listing.splitlines()[1:]]


def test_ls_shows_full_names_and_stages(run_dir, tmp_path):
    listed = cli("ls", "demo", "--runs-dir", str(run_dir.parent), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert LONG_NAME in listed.stdout and "awaiting_review" in listed.stdout
    assert "150,000" in listed.stdout  # parameters
    assert ids(listed.stdout) == ["e0001", "e0002", "e0003", "e0004", "e0005"]


@pytest.mark.parametrize(("args", "expected"), [
    (["--sort", "fitness"], ["e0004", "e0002", "e0001", "e0003", "e0005"]),   # best first, unscored last
    (["--sort", "params"], ["e0004", "e0002", "e0001", "e0003", "e0005"]),
    (["--sort", "name"], ["e0005", "e0004", "e0001", "e0003", "e0002"]),
    (["--status", "ok"], ["e0001", "e0002", "e0004"]),
    (["--status", "crashed,awaiting_review", "--sort", "id"], ["e0003", "e0005"]),
])
def test_ls_sorts_and_filters(run_dir, tmp_path, args, expected):
    listed = cli("ls", str(run_dir), *args, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert ids(listed.stdout) == expected


def test_ls_json_follows_the_filters(run_dir, tmp_path):
    listed = cli("ls", str(run_dir), "--status", "ok", "--sort", "fitness", "--json", cwd=tmp_path)
    assert [e["id"] for e in json.loads(listed.stdout)] == ["e0004", "e0002", "e0001"]


@pytest.mark.parametrize(("args", "message"), [
    (["--sort", "speed"], "--sort 'speed' is not a column to sort by; choose one of: id, name, fitness, params"),
    (["--status", "good"], "--status 'good': unknown good; choose from (comma-separated): analyzed, approved, "
                           "awaiting_review"),
    (["--status", ","], "--status ',': empty; choose from"),
])
def test_ls_bad_values_exit_2_listing_the_choices(run_dir, tmp_path, args, message):
    refused = cli("ls", str(run_dir), *args, cwd=tmp_path)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_show_diff_against_the_parent(run_dir, tmp_path):
    shown = cli("show", str(run_dir), "e0004", "--diff", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == ["--- e0002/candidate.py (wider_state, parent)",
                                             f"+++ e0004/candidate.py ({LONG_NAME})"]
    assert "-        return x\n+        return 2 * x" in shown.stdout
    same = cli("show", str(run_dir), "e0005", "--diff", cwd=tmp_path)
    assert same.stdout.strip() == "e0005 has the same code as its parent e0002"


@pytest.mark.parametrize(("exp_id", "message"), [
    ("e0001", "e0001 (reference) has no parent to diff against; `archlab show"),
    ("e0003", "e0003 has no code yet (stage awaiting_review); there is nothing to diff"),
])
def test_show_diff_without_something_to_compare_exits_2(run_dir, tmp_path, exp_id, message):
    refused = cli("show", str(run_dir), exp_id, "--diff", cwd=tmp_path)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_references_mark_each_tasks_baseline_and_ceiling(tmp_path):
    listed = cli("references", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line and not line.startswith(" ")}
    assert lines["gated_delta_rule"].endswith("[baseline of bytelm, mqar]")
    assert lines["softmax_attention"].endswith("[ceiling of bytelm, mqar; quadratic]")
    assert "[" not in lines["delta_rule"]
    assert "baseline: a task's fitness is measured relative to it" in listed.stdout


def test_resume_with_no_more_experiments_than_done_says_so(tmp_path):
    run_dir = make_run(tmp_path / "runs", awaiting=False)  # two proposals finished, three planned
    refused = cli("resume", str(run_dir), "--experiments", "2", cwd=tmp_path)
    assert refused.returncode == 2
    assert ("--experiments 2: run demo has already finished 2 proposals (planned 3), so nothing would be added; "
            "give more than 2 to extend it") in refused.stderr
    assert json.loads((run_dir / "config.json").read_text())["experiments"] == 3  # unchanged


@pytest.mark.slow
def test_resume_extends_a_finished_run(smoke_run, tmp_path):
    run_dir = copy_run(smoke_run, tmp_path / "runs")  # a real run, finished: one proposal planned and done
    extended = cli("resume", str(run_dir), "--experiments", "2", cwd=tmp_path, timeout=600)
    assert extended.returncode == 0, extended.stdout + extended.stderr
    assert f"run {SMOKE_RUN}: 1 -> 2 proposals (1 finished)" in extended.stdout
    assert json.loads((run_dir / "config.json").read_text())["experiments"] == 2
    with Archive.open(run_dir, readonly=True) as archive:
        proposals = [e for e in archive.experiments(run=SMOKE_RUN) if e.proposer != "reference"]
    assert len(proposals) == 2 and all(e.finished for e in proposals)
