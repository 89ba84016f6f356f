"""The live terminal view of a run: one line per finished step, with the run's standing."""
from __future__ import annotations

import sys
import time

from agents.driver import Progress


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def progress_line(progress: Progress) -> str:
    best = (f"best {progress.best.fitness.value:+.4f}±{progress.best.fitness.stderr:.4f} "
            f"{progress.best.id} ({progress.best.name})" if progress.best else "best: none yet")
    review = f", {len(progress.awaiting_review)} awaiting review" if progress.awaiting_review else ""
    return (f"[{time.strftime('%H:%M:%S')}] {progress.message:<48.48} | {progress.done}/{progress.target} done, "
            f"{len(progress.in_flight)} in flight{review} | {best} | ${progress.spend_usd:.2f} "
            f"({progress.calls} calls) | ETA {_duration(progress.eta_s)}")


def print_progress(progress: Progress) -> None:
    print(progress_line(progress), file=sys.stderr, flush=True)
