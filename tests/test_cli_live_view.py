"""The live view of a run: a Rich panel on a terminal that fits 80 columns (in flight, standing, best,
spend, ETA, candidates awaiting review with the command to review them), and the plain one line per
event where stdout is not a terminal."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from agents.driver import Progress
from archlab.live_view import read_board, render
from knowledge.archive import Archive
from knowledge.records import Experiment, LLMCall, Stage
from tests.cli_support import ROOT, archlab_cmd, make_run
from tests.loop_support import write_config

LONG_NAME = "delta-head-decay-conv4-silu-gated-l2-rms-window64-chunk32-expand2-0f3a9c"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
EVENT_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] .{48} \| \d+/\d+ done, \d+ in flight")


def screen(board, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))
    console.print(render(board))
    return console.export_text().splitlines()


@pytest.fixture()
def busy_run(tmp_path) -> Path:
    """A run with a finished proposal, one training, one being proposed and five awaiting review."""
    run_dir = make_run(tmp_path / "runs")
    with Archive.open(run_dir) as archive:
        archive.add_experiments([
            Experiment(id="e0004", run="demo", name=LONG_NAME, proposer="offline", stage=Stage.APPROVED),
            Experiment(id="e0005", run="demo"),
            Experiment(id="e0006", run="demo", name="failed_one", proposer="offline", stage=Stage.FAILED,
                       reason="leaky"),
            *(Experiment(id=f"e00{n}", run="demo", name=f"waiting_{n}", proposer="offline",
                         stage=Stage.AWAITING_REVIEW) for n in range(10, 14)),
        ])
        for cost in (0.5, 0.75):  # spend is read from the archive, between progress reports too
            archive.record_llm_call(LLMCall(run="demo", experiment_id="e0004", role="coder", model="m", prompt=[],
                                            cost_usd=cost))
    return run_dir


def test_panel_shows_the_run_in_80_columns(busy_run):
    progress = Progress(done=2, target=3, in_flight=["e0004", "e0005"], awaiting_review=["e0003"], best=None,
                        spend_usd=1.25, calls=7, eta_s=125.0, message="e0006 failed: leaky")
    with Archive.open(busy_run, readonly=True) as archive:
        board = read_board(archive, "demo", title="run demo · mqar/smoke · offline", run_ref="runs/demo", target=3,
                           progress=progress, recent=["12:00:00 e0006 failed: leaky " + "x" * 120],
                           started=time.monotonic() - 75)
    lines = screen(board)
    text = "\n".join(lines)
    assert max(cell_len(line) for line in lines) <= 80, text
    assert lines[0].startswith("╭─ run demo · mqar/smoke · offline")
    assert "proposals 2/3 done  ok 1  failed 1" in text
    assert "best e0002 wider_state  +0.0500 ± 0.0100" in text
    assert "spend $1.25 (2 LLM calls)   elapsed 1m15s   ETA 2m05s" in text
    assert re.search(r"e0004  delta-head-decay-conv4-silu-gated\S*…  training ", text), text
    assert re.search(r"e0005  -\s+proposing ", text), text
    assert "awaiting review (5)" in text
    for exp_id in ("e0003", "e0010", "e0011"):
        assert f"archlab review runs/demo {exp_id} --approve" in text
    assert "and 2 more: archlab ls runs/demo --status awaiting_review" in text
    assert "--reject NOTE, --replace FILE, --idea TEXT" in text
    assert "12:00:00 e0006 failed: leaky xxx" in text


def test_panel_before_the_first_progress_report(busy_run):
    with Archive.open(busy_run, readonly=True) as archive:
        board = read_board(archive, "demo", title="run demo", run_ref="/a/rather/long/path/to/the/runs/directory/demo",
                           target=3, progress=None, recent=[], started=time.monotonic())
    lines = screen(board)
    assert max(cell_len(line) for line in lines) <= 80
    assert "ETA ?" in "\n".join(lines) and "recent" not in "\n".join(lines)


def test_a_proposal_the_proxy_gate_skipped_is_not_counted_as_failed(busy_run):
    with Archive.open(busy_run) as archive:
        archive.add_experiments([Experiment(id="e0007", run="demo", name="gated_out", proposer="offline",
                                            stage=Stage.ANALYZED, status="skipped",
                                            reason="skipped by the snip proxy: 0.1 below the 25% quantile 0.3")])
    with Archive.open(busy_run, readonly=True) as archive:
        board = read_board(archive, "demo", title="run demo", run_ref="runs/demo", target=4, progress=None,
                           recent=[], started=time.monotonic())
    assert (board.ok, board.failed, board.skipped) == (1, 1, 1)
    assert "ok 1  failed 1  skipped 1" in "\n".join(screen(board))


def _run_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, experiments=1, workers=1)


def _on_pty(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run argv with a real 80x30 terminal as stdin, stdout and stderr; returns (exit code, everything shown)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color")
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    shown, deadline = bytearray(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end closed, the process is gone
                    break
                if not chunk:
                    break
                shown += chunk
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"archlab did not finish in {timeout} s:\n{shown.decode(errors='replace')}")
        return process.wait(timeout=30), shown.decode(errors="replace")
    finally:
        os.close(master)


@pytest.mark.slow
def test_a_run_on_a_terminal_shows_the_panel(tmp_path):
    code, shown = _on_pty([*archlab_cmd(), "run", "--offline", "--config", str(_run_config(tmp_path)), "--name", "live"],
                          cwd=tmp_path, timeout=600)
    plain = ANSI.sub("", shown.replace("\r", "\n"))  # each redraw starts with a carriage return
    assert code == 0, plain[-3000:]
    assert "╭─ run live · mqar/smoke · offline" in plain
    assert "in flight" in plain and "gated_delta_rule" in plain  # the baseline, while it trains
    assert "proposals 1/1 done" in plain
    panel = [line for line in plain.splitlines() if line[:1] in ("╭", "│", "╰")]
    assert panel and max(cell_len(line) for line in panel) <= 80
    assert not [line for line in plain.splitlines() if EVENT_LINE.match(line)]  # no plain event lines on a terminal
    assert "finished" in plain and "archlab status" in plain


@pytest.mark.slow
def test_a_run_without_a_terminal_prints_one_line_per_event(smoke_run_result):
    """The session's shared run is made this way (tests/support/smoke_run.py): `archlab run --offline`, one
    proposal, stdout and stderr captured; its exit code 0 is asserted there."""
    done = smoke_run_result
    assert "╭" not in done.stdout + done.stderr and "\x1b[" not in done.stdout + done.stderr
    events = done.stderr.splitlines()
    assert len(events) >= 2 and all(EVENT_LINE.match(line) for line in events), done.stderr
    assert "e0001 analyzed" in events[0]  # the baseline first
    assert "1/1 done" in done.stdout  # the closing standing
