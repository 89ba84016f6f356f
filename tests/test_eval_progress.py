"""Progress of an evaluation, streamed from the sandboxed worker: events arrive in order and before the
result, `archlab eval --json` keeps stdout one JSON object, candidate code cannot forge progress or
change a result through it, and `--vs-baseline` scores the target against the task's baseline."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

import evaluator.evaluate as evaluate_module
from evaluator.evaluate import evaluate
from evaluator.progress import MAX_LINE_BYTES, ProgressEvent, ProgressReader, make_writer
from evaluator.records import Status
from sandbox.isolation import Isolation
from sandbox.job import Limits, SandboxJob
from sandbox.runner import run_sandboxed
from sandbox.screen import ScreenReport
from tests.cli_support import cli

CANDIDATES = Path(__file__).with_name("candidates")
WORKER_CHECKS = ["instantiate", "forward", "causality", "batch_independence", "complexity"]


def collect() -> tuple[list[ProgressEvent], Callable[[ProgressEvent], None]]:
    events: list[ProgressEvent] = []
    return events, events.append


def read_back(lines: list[bytes], key: str = "k") -> list[ProgressEvent]:
    """Lines written into a real pipe, read by the orchestrator's reader."""
    events, on_progress = collect()
    reader = ProgressReader(on_progress, key)
    for line in lines:
        os.write(reader.write_fd, line)
    reader.finish()
    return events


def sealed_line(event: dict, key: str = "k") -> bytes:
    """What the worker's writer puts on the pipe for `event`, captured through a real pipe."""
    read_fd, write_fd = os.pipe()
    make_writer(write_fd, key)(ProgressEvent(**event))
    os.close(write_fd)
    line = os.read(read_fd, MAX_LINE_BYTES)
    os.close(read_fd)
    return line


def test_the_reader_delivers_sealed_events_in_order_and_drops_everything_else():
    good = [sealed_line({"kind": "check", "name": "forward", "index": 2, "total": 5}),
            sealed_line({"kind": "step", "index": 10, "total": 30, "loss": 2.5, "tokens_per_second": 900.0})]
    unsealed = json.dumps({"event": json.dumps({"kind": "step", "index": 1, "total": 2}), "mac": "0" * 64}).encode()
    wrong_key = sealed_line({"kind": "step", "index": 5, "total": 30}, key="other")
    out_of_range = sealed_line({"kind": "step", "index": 31, "total": 30})
    unknown_kind = sealed_line({"kind": "phase", "name": "train"}).replace(b'\\"phase\\"', b'\\"metrics\\"')
    events = read_back([b"not json\n", good[0], unsealed + b"\n", b"y" * (3 * MAX_LINE_BYTES) + b"\n", wrong_key,
                        out_of_range, unknown_kind, b'{"event": 1, "mac": []}\n', b"[" * 100_000 + b"\n", good[1]])
    assert [(e.kind, e.name, e.index, e.total) for e in events] == [("check", "forward", 2, 5), ("step", "", 10, 30)]
    assert events[1].describe() == "step 10/30  loss 2.5000  900 tokens/s"


def test_a_broken_display_is_reported_once_and_the_writer_never_blocks(capfd):
    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("terminal gone")
    reader = ProgressReader(broken, "k")
    send = make_writer(reader.write_fd, "k")
    started = time.monotonic()
    for step in range(5_000):  # far more than the pipe holds: the reader's pace must not matter
        send(ProgressEvent("step", index=step % 30, total=30))
    assert time.monotonic() - started < 10
    reader.finish()
    assert capfd.readouterr().err.count("showing progress failed (RuntimeError: terminal gone)") == 1


@pytest.mark.parametrize("bubblewrap", [True, False])
def test_a_passed_descriptor_reaches_the_job_and_no_other_does(tmp_path, bubblewrap):
    """bubblewrap keeps inherited descriptors: the progress pipe arrives, with its number, and nothing else."""
    isolation = Isolation(prefer_bwrap=bubblewrap)
    if bubblewrap and not isolation.bwrap.program:
        pytest.skip(f"bubblewrap: {isolation.bwrap.problem}")
    read_fd, write_fd = os.pipe()
    stray_read, stray_write = os.pipe()  # open in the orchestrator, not passed
    script = (f"import os; os.write({write_fd}, b'through'); "
              "print(sorted(int(n) for n in os.listdir('/proc/self/fd')))")
    job = SandboxJob(argv=[sys.executable, "-c", script], work_dir=tmp_path, limits=Limits(wall_seconds=30),
                     pass_fds=(write_fd,))
    try:
        outcome = run_sandboxed(job, isolation=isolation)
        os.close(write_fd)
        assert outcome.exit_code == 0, outcome.stderr_tail
        assert os.read(read_fd, 100) == b"through"
        inherited = set(json.loads(outcome.stdout_tail)) - {0, 1, 2, write_fd}
        assert len(inherited) <= 1 and stray_write not in inherited  # at most listdir's own descriptor
    finally:
        for fd in (read_fd, stray_read, stray_write):
            os.close(fd)
    with pytest.raises(ValueError, match="job.pass_fds entry 9999 is not an open descriptor"):
        run_sandboxed(SandboxJob(argv=[sys.executable, "-c", "pass"], work_dir=tmp_path, pass_fds=(9999,)))


def test_progress_events_arrive_in_order_before_the_result(tmp_path):
    events, on_progress = collect()
    result = evaluate(CANDIDATES / "causal_cummax.py", "mqar", "smoke", out_dir=tmp_path / "out", threads=1,
                      on_progress=on_progress)
    delivered_at_return = list(events)
    assert result.status is Status.OK, result.reason
    assert not any(t.name == "eval-progress" for t in threading.enumerate())  # the reader is done
    assert delivered_at_return == events
    shown = [(e.kind, e.name) for e in events if e.kind != "step"]
    assert shown == [("check", "screen"), ("phase", "start"), ("phase", "checks"), *(("check", name) for name in WORKER_CHECKS),
                     ("phase", "train"), ("phase", "eval"), ("check", "trained_causality"), ("phase", "measure")]
    assert [e.index for e in events if e.kind == "check" and e.total == 5] == [1, 2, 3, 4, 5]
    steps = [e for e in events if e.kind == "step"]
    assert [e.index for e in steps] == [1, 6, 11, 16, 21, 26, 30] and {e.total for e in steps} == {30}
    assert all(e.loss is not None and e.loss > 0 for e in steps) and steps[-1].tokens_per_second > 0
    assert [e.loss for e in steps] == [loss for _, loss in result.loss_curve]  # the same loss the result records
    train_starts = [(e.kind, e.name) for e in events].index(("phase", "train"))
    assert events[train_starts + 1:train_starts + 1 + len(steps)] == steps  # every step between train and eval
    assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(events[1:], events[2:]))


def test_a_candidate_forging_progress_changes_neither_the_result_nor_the_events(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_module, "screen_source", lambda source, allowed: ScreenReport(passed=True))
    events, on_progress = collect()
    result = evaluate(CANDIDATES / "forge_progress.py", "mqar", "smoke", out_dir=tmp_path / "out", threads=1,
                      on_progress=on_progress)
    assert result.status is Status.OK, result.reason
    assert result.metrics["train_steps"] == 30 and 0 <= result.metrics["accuracy"] < 0.5
    assert "step 999/999" in result.log_tail  # its stdout is only ever a log
    assert events and events[0] == ProgressEvent("check", "screen", True, 1, 1)
    assert all(e.name != "forged" and e.index <= 30 and e.total <= 30 for e in events), events
    assert all(e.tokens_per_second is None or e.tokens_per_second < 1e9 for e in events)


def test_eval_streams_progress_to_stderr_and_vs_baseline_prints_fitness(tmp_path):
    """The target is the baseline here: one evaluation, fitness 0."""
    text = cli("eval", "gated_delta_rule", "--task", "mqar", "--budget", "smoke", "--vs-baseline",
               "--out", str(tmp_path / "text"), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "fitness vs baseline gated_delta_rule: +0.0000 (the target is the baseline)" in text.stdout
    progress = text.stderr.splitlines()  # not a terminal: one plain line per event, on stderr only
    assert any(line.endswith("target: check 3/5 causality: pass") for line in progress), text.stderr
    assert any("target: step 30/30  loss" in line for line in progress) and "step 30/30" not in text.stdout
    assert progress.index(next(line for line in progress if "check 5/5" in line)) < progress.index(
        next(line for line in progress if "step 30/30" in line))


@pytest.mark.slow  # two evaluations: about 25 s on 2 busy cores
def test_eval_json_is_one_object_with_the_baseline_on_the_same_seed_and_the_fitness_against_it(tmp_path):
    done = cli("eval", "linear_attention", "--budget", "smoke", "--seed", "1", "--vs-baseline", "--json",
               "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # stdout is exactly one JSON object: the target's eval.json and vs_baseline
    assert record["status"] == "ok" and record["metrics"]["train_steps"] == 30
    assert done.stderr.strip() == ""  # stderr is not a terminal: with --json no progress at all
    comparison = record["vs_baseline"]
    baseline = comparison["result"]
    assert comparison["baseline"] == "gated_delta_rule" and not comparison["is_target"]
    assert baseline["seed"] == record["seed"] == 1 and baseline["device"] == record["device"] == "cpu"
    assert baseline["budget"] == "smoke" and baseline["status"] == "ok"
    expected = record["metrics"]["accuracy"] - baseline["metrics"]["accuracy"]  # mqar fitness: accuracy gained
    assert comparison["fitness"]["value"] == pytest.approx(expected) and comparison["fitness"]["seeds"] == 1
    assert (tmp_path / "out" / "baseline" / "eval.json").is_file() and (tmp_path / "out" / "eval.json").is_file()


def test_the_live_view_shows_the_step_of_each_experiment_in_training(tmp_path):
    from rich.console import Console

    from archlab.live_view import read_board, render
    from evaluator.progress import LatestProgress
    from knowledge.archive import Archive
    from knowledge.records import Experiment, Stage
    from tests.cli_support import make_run

    run_dir = make_run(tmp_path / "runs")
    long_name = "delta-head-decay-conv4-silu-gated-l2-rms-window64-chunk32-expand2-0f3a9c"
    with Archive.open(run_dir / "archive.sqlite") as archive:
        archive.add_experiments([Experiment(id=f"e000{n}", run="demo", name=f"{long_name}{n}", proposer="offline",
                                            stage=Stage.APPROVED) for n in (4, 5, 6, 7)])
        training = LatestProgress()
        training.note("e0004", ProgressEvent("step", index=980, total=1000, loss=2.1))
        training.note("e0005", ProgressEvent("check", "causality", True, 3, 5))
        training.note("e0006", ProgressEvent("phase", "eval"))
        board = read_board(archive, "demo", title="run demo", run_ref="runs/demo", target=3, progress=None,
                           recent=[], started=time.monotonic(), training=training)
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(render(board))
    lines = console.export_text().splitlines()
    row = {line.split()[1]: line for line in lines if line.startswith("│ e000")}
    assert "  step 980/1000  " in row["e0004"] and "  checks 3/5  " in row["e0005"]
    assert "  metrics  " in row["e0006"] and "  training  " in row["e0007"]  # no progress streamed: the stage
    assert max(len(line) for line in lines) <= 80
