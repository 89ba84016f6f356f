"""Usage errors exit 2 with a message that says what to fix: never a traceback, never exit 1,
never a validation library's wording. Each case is the real command line in a fresh process."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from archlab.cli import main
from knowledge.archive import Archive
from tests.cli_support import cli, make_run


def refused(done, *fragments: str) -> None:
    """Exit 2, every fragment in the message, and nothing a user should not have to read."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)
    for leak in ("Traceback", "Value error", "Input should", "validation error"):
        assert leak not in done.stderr + done.stdout, done.stderr


@pytest.fixture()
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_eval_refuses_a_device_this_machine_lacks(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    refused(cli("eval", "gated_delta_rule", "--device", "cuda", cwd=tmp_path),
            "--device cuda: CUDA is not available on this machine", "use --device cpu")
    refused(cli("eval", "gated_delta_rule", "--device", "gpu0", cwd=tmp_path), "use cpu, cuda or cuda:N")


def test_eval_and_run_refuse_a_fifo_as_data(tmp_path, fifo):
    refused(cli("eval", "gated_delta_rule", "--task", "bytelm", "--data", str(fifo), cwd=tmp_path),
            f"--data {fifo} is a FIFO (named pipe)", "give a regular text file or a folder")
    refused(cli("run", "--task", "bytelm", "--data", str(fifo), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path),
            "is a FIFO (named pipe)")
    assert not (tmp_path / "runs").exists()  # refused before anything was created


def test_unwritable_output_and_runs_directories(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    refused(cli("eval", "gated_delta_rule", "--out", str(blocker / "out"), cwd=tmp_path),
            f"cannot create the output directory (--out) {blocker / 'out'}", "choose a writable place")
    refused(cli("run", "--runs-dir", str(blocker / "runs"), "--experiments", "0", cwd=tmp_path),
            "cannot create the runs directory (--runs-dir)")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    refused(cli("run", "--runs-dir", str(locked), "--experiments", "0", cwd=tmp_path, unprivileged=True),
            f"the runs directory (--runs-dir) {locked} is not writable")


def test_references_of_an_unknown_family(tmp_path):
    refused(cli("references", "--family", "foo", cwd=tmp_path), "--family foo", "known families: mixer")


def test_configuration_problems_in_archlabs_words(tmp_path):
    refused(cli("run", "--name", "bad name!", "--runs-dir", str(tmp_path), cwd=tmp_path),
            "name: run names use letters, digits")
    refused(cli("run", "--experiments", "-1", "--runs-dir", str(tmp_path), cwd=tmp_path),
            "experiments: must be at least 0, got -1")
    config = tmp_path / "archlab.toml"
    config.write_text('workers = "two"\nreveiw = true\n[search]\nstrategy = "greedy"\n')
    refused(cli("run", "--config", str(config), cwd=tmp_path), "workers: must be a whole number, got 'two'",
            "reveiw: is not a known setting", "search.strategy: must be one of 'uct', 'qd', 'mixed' or 'pareto'")


def test_review_decisions_that_cannot_be_applied(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    refused(cli("review", str(run_dir), "--approve", cwd=tmp_path), "which experiment?",
            f"archlab review {run_dir} e0003 --approve", "awaiting review: e0003")
    refused(cli("review", str(run_dir), "e0003", "--reject", "  ", cwd=tmp_path), "--reject needs a note saying why")
    refused(cli("review", str(run_dir), "e0003", cwd=tmp_path), "give a decision for e0003: --approve")
    refused(cli("review", str(run_dir), "e0002", "--approve", cwd=tmp_path), "e0002 is not awaiting review")
    nameless = tmp_path / "nameless.py"
    nameless.write_text("import torch\n\nclass Mixer(torch.nn.Module):\n    pass\n")
    refused(cli("review", str(run_dir), "e0003", "--replace", str(nameless), cwd=tmp_path),
            "say what your file tries with --note TEXT")
    with Archive.open(run_dir, readonly=True) as archive:
        assert not archive.events(kind="review_decision")  # nothing refused was recorded


def test_version_and_main_in_process(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("archlab ")
    assert main(["references", "--family", "nope"]) == 2
    assert "known families: mixer" in capsys.readouterr().err
