"""Plain progress of a run: one line per finished step, with the run's standing. This is what a run prints
where stdout is not a terminal (CI, `nohup`, a pipe); on a terminal `archlab.live_view` shows a panel."""
from __future__ import annotations

import sys
import time

from agents.driver import Progress


def duration(seconds: float | None) -> str:
    """Seconds as 4m05s or 1h02m; "?" when unknown (an ETA before the first proposal finished)."""
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
            f"({progress.calls} calls) | ETA {duration(progress.eta_s)}")


def print_progress(progress: Progress) -> None:
    print(progress_line(progress), file=sys.stderr, flush=True)
