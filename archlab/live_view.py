"""The live view of a run in a terminal: one Rich panel, redrawn in place, that says what is in flight,
how the run stands and what waits for a person, in 80 columns.

The panel is rebuilt from the archive (the source of truth, so it shows stages the driver does not
report), the driver's last `Progress` (ETA, spend, what just happened) and the sandboxed workers'
last progress events (`Lab.training`: "checks 3/5", "step 40/200"); Rich's `Live` redraws it
on every progress event and once a second in between, so elapsed times keep moving. Where stdout is
not a terminal (CI, `nohup`, a pipe) the plain one-line-per-event output of `archlab.progress` is
used instead: a redrawn panel would be a stream of escape codes there.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agents.driver import Progress
from archlab.progress import duration, print_progress
from evaluator.progress import LatestProgress, ProgressEvent
from knowledge.archive import Archive
from knowledge.records import FINISHED_STAGES, Stage

RECENT_EVENTS = 3      # progress messages kept under the panel's tables
SHOWN_REVIEWS = 3      # candidates awaiting review listed with their command; the rest are counted
REFRESH_PER_SECOND = 1

# What an unfinished experiment is doing, by the stage it last recorded.
ACTIVITY = {Stage.PROPOSED: "coding", Stage.CODED: "approving", Stage.APPROVED: "training",
            Stage.EVALUATED: "analysing"}
# What a training experiment's worker is doing, by the phase it last reported.
PHASE_ACTIVITY = {"start": "starting", "checks": "checks", "train": "training", "eval": "metrics", "measure": "measuring"}


@dataclass(frozen=True)
class Flight:
    """One experiment in flight: what it is doing and for how long."""

    id: str
    name: str
    activity: str        # proposing, coding, approving, training (checks n/N, step n/N, metrics), analysing
    in_step_s: float     # since its last recorded change
    total_s: float       # since it was created


@dataclass(frozen=True)
class Board:
    """Everything the panel shows, read at one moment."""

    title: str
    run_ref: str                         # the run as a person types it in a command
    target: int
    done: int
    ok: int
    failed: int
    rejected: int
    skipped: int                         # not trained: the proxy gate ranked them out (agents/proxy_gate.py)
    references: tuple[int, int]          # (finished, all)
    in_flight: list[Flight]
    awaiting: list[tuple[str, str]]      # (id, name)
    best: str                            # "e0012 name  +0.0123 ± 0.0040" or ""
    spend_usd: float
    calls: int
    elapsed_s: float
    eta_s: float | None
    recent: list[str]
    stopped: str = ""


def read_board(archive: Archive, run: str, *, title: str, run_ref: str, target: int, progress: Progress | None,
               recent: list[str], started: float, now: float | None = None,
               training: LatestProgress | None = None) -> Board:
    """The panel's content from the archive and the driver's last progress report (None before the first),
    which alone knows the ETA, and the workers' progress of the experiments in training, where streamed."""
    now = time.time() if now is None else now
    briefs = archive.briefs(run=run)
    proposals = [b for b in briefs if b.proposer != "reference"]
    references = [b for b in briefs if b.proposer == "reference"]
    finished = [b for b in proposals if b.stage in FINISHED_STAGES]
    ok = sum(1 for b in finished if b.stage is Stage.ANALYZED and b.status == "ok")
    rejected = sum(1 for b in finished if b.stage is Stage.REJECTED)
    skipped = sum(1 for b in finished if b.stage is Stage.ANALYZED and b.status == "skipped")
    unfinished = [e for stage in (*ACTIVITY, Stage.AWAITING_REVIEW) for e in archive.experiments(run=run, stage=stage)]
    unfinished.sort(key=lambda e: e.id)
    flights = [Flight(e.id, e.name, _activity(e.id, e.stage, training) if e.name else "proposing",
                      max(0.0, now - e.updated_at), max(0.0, now - e.created_at))
               for e in unfinished if e.stage is not Stage.AWAITING_REVIEW]
    scored = [b for b in proposals if b.fitness is not None]
    best = ""
    if scored:
        top = archive.get_experiment(max(scored, key=lambda b: b.fitness).id)
        flag = " (flagged: implausible)" if top.fitness.flagged else ""
        best = f"{top.id} {top.name}  {top.fitness.value:+.4f} ± {top.fitness.stderr:.4f}{flag}"
    spend = archive.spend(run)  # LLM calls are recorded as they happen, between progress reports too
    return Board(
        title=title, run_ref=run_ref, target=target, done=len(finished), ok=ok, rejected=rejected, skipped=skipped,
        failed=len(finished) - ok - rejected - skipped,
        references=(sum(1 for b in references if b.stage in (Stage.ANALYZED, Stage.FAILED)), len(references)),
        in_flight=flights, awaiting=[(e.id, e.name) for e in unfinished if e.stage is Stage.AWAITING_REVIEW],
        best=best, spend_usd=spend.usd, calls=spend.calls,
        elapsed_s=max(0.0, time.monotonic() - started), eta_s=progress.eta_s if progress else None,
        recent=list(recent), stopped=progress.stopped if progress else "")


def _activity(exp_id: str, stage: Stage, training: LatestProgress | None) -> str:
    event: ProgressEvent | None = training.get(exp_id) if training is not None and stage is Stage.APPROVED else None
    if event is None:
        return ACTIVITY[stage]
    if event.kind == "step":
        return f"step {event.index}/{event.total}"
    if event.kind == "check":
        return f"checks {event.index}/{event.total}" if event.total > 1 else "checks"
    return PHASE_ACTIVITY.get(event.name, ACTIVITY[stage])


def _flight_table() -> Table:
    """id, name, stage, in stage, total: fixed widths but the name's, which takes the rest (and is cut with …)."""
    table = Table.grid(padding=(0, 2), expand=True)
    for width in (5, None, 14, 8, 7):  # stage: up to "step 1000/1000"
        table.add_column(no_wrap=True, overflow="ellipsis", width=width, ratio=None if width else 1)
    return table


def render(board: Board) -> RenderableType:
    """The panel; every row stays on one line (long names end in an ellipsis), so it fits 80 columns."""
    standing = Text.assemble(("proposals ", "bold"), f"{board.done}/{board.target} done", "  ",
                             ("ok ", "green"), str(board.ok), "  ", ("failed ", "red"), str(board.failed))
    if board.rejected:
        standing.append(f"  rejected {board.rejected}")
    if board.skipped:
        standing.append(f"  skipped {board.skipped}")
    finished_refs, all_refs = board.references
    if finished_refs < all_refs:
        standing.append(f"  references {finished_refs}/{all_refs}", style="dim")
    parts: list[RenderableType] = [
        standing,
        Text.assemble(("best ", "bold"), board.best or "none yet"),
        Text.assemble(("spend ", "bold"), f"${board.spend_usd:.2f} ({board.calls} LLM calls)", "   ",
                      ("elapsed ", "bold"), duration(board.elapsed_s), "   ", ("ETA ", "bold"), duration(board.eta_s)),
    ]
    parts.append(Text(f"\nin flight ({len(board.in_flight)})", style="bold"))
    if board.in_flight:
        flights = _flight_table()
        flights.add_row(*(Text(h, style="dim") for h in ("id", "name", "stage", "in stage", "total")))
        for flight in board.in_flight:
            flights.add_row(flight.id, flight.name or "-", flight.activity, duration(flight.in_step_s),
                            duration(flight.total_s))
        parts.append(flights)
    else:
        parts.append(Text("  nothing: waiting for a review decision" if board.awaiting else "  nothing", style="dim"))
    if board.awaiting:
        parts.append(Text(f"\nawaiting review ({len(board.awaiting)})", style="bold yellow"))
        for exp_id, name in board.awaiting[:SHOWN_REVIEWS]:
            parts.append(Text(f"  {exp_id} {name}", no_wrap=True, overflow="ellipsis"))
            parts.append(Text(f"    archlab review {board.run_ref} {exp_id} --approve", style="cyan"))
        if len(board.awaiting) > SHOWN_REVIEWS:
            parts.append(Text(f"  and {len(board.awaiting) - SHOWN_REVIEWS} more: "
                              f"archlab ls {board.run_ref} --status awaiting_review"))
        parts.append(Text("  other decisions: --reject NOTE, --replace FILE, --idea TEXT", style="dim"))
    if board.recent:
        parts.append(Text("\nrecent", style="bold"))
        parts += [Text(f"  {line}", no_wrap=True, overflow="ellipsis", style="dim") for line in board.recent]
    if board.stopped:
        parts.append(Text(f"\nstopped: {board.stopped}", style="bold red"))
    return Panel(Group(*parts), title=Text(board.title, no_wrap=True, overflow="ellipsis"), title_align="left",
                 subtitle="Ctrl-C stops cleanly; archlab resume continues", subtitle_align="right")


class LiveView:
    """A `Live` panel for one run; `on_progress` is the driver's callback. Use as a context manager."""

    def __init__(self, archive: Archive, run: str, *, title: str, run_ref: str, target: int, console: Console,
                 training: LatestProgress | None = None):
        self._archive, self._run, self._console = archive, run, console
        self._fixed = {"title": title, "run_ref": run_ref, "target": target, "training": training}
        self._progress: Progress | None = None
        self._recent: deque[str] = deque(maxlen=RECENT_EVENTS)
        self._started = time.monotonic()
        self._lock = threading.Lock()  # the driver's thread reports, Live's thread redraws
        self._last: RenderableType = Text("starting...")
        self._live = Live(get_renderable=self._renderable, console=console, refresh_per_second=REFRESH_PER_SECOND)

    def __enter__(self) -> LiveView:
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def on_progress(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress
            if progress.message:
                self._recent.append(f"{time.strftime('%H:%M:%S')} {progress.message}")
        self._live.refresh()

    def _renderable(self) -> RenderableType:
        with self._lock:
            progress, recent = self._progress, list(self._recent)
        try:
            board = read_board(self._archive, self._run, progress=progress, recent=recent, started=self._started,
                               **self._fixed)
        except Exception:  # noqa: BLE001 - a busy or closing archive: keep showing the last panel
            return self._last
        self._last = render(board)
        return self._last


def run_ref(run_dir: Path) -> str:
    """The run directory as short as it can be typed from here."""
    relative = os.path.relpath(run_dir)
    return relative if not relative.startswith("..") else str(run_dir.resolve())


def on_terminal(console: Console | None = None) -> bool:
    """Whether stdout is a terminal that can redraw a panel (not a pipe, a file or TERM=dumb)."""
    console = console or Console()
    return console.is_terminal and not console.is_dumb_terminal


@contextmanager
def progress_display(archive: Archive, run: str, run_dir: Path, *, title: str, target: int,
                     training: LatestProgress | None = None) -> Iterator[Callable[[Progress], None]]:
    """The driver's `on_progress`: the live panel on a terminal, one line per event anywhere else.
    `training` (the lab's) adds each training experiment's step to the panel."""
    console = Console()
    if not on_terminal(console):
        yield print_progress
        return
    with LiveView(archive, run, title=title, run_ref=run_ref(run_dir), target=target, console=console,
                  training=training) as view:
        yield view.on_progress
