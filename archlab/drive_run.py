"""Driving a run in this process, for `archlab run`, `resume` and `replay`: the live panel (or progress lines),
a clean stop on Ctrl-C or `kill PID`, and the outcome printed under it."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this at start; pydantic and the loop load only when a run is driven
    from agents.config import RunConfig


def drive(config: RunConfig, run_dir: Path, what: str = "run") -> int:
    """Drive the run in `run_dir` until it finishes or stops: 0 done, 1 when its baseline failed, 130 when
    interrupted (resumable). `what` names it in the messages ("run", "replay")."""
    from agents.driver import BaselineFailed, Driver
    from agents.session import open_session
    from archlab.live_view import progress_display

    _stop_on_sigterm()
    title = (f"{what} {config.name or run_dir.name} · {config.task}/{config.budget} · "
             f"{'LLM ' + config.llm.models['default'] if config.llm else 'offline'}")
    with open_session(config, run_dir) as (lab, graph):
        try:  # the panel (on a terminal) is closed before the outcome is printed under it
            with progress_display(lab.archive, lab.run, run_dir, title=title, target=config.experiments,
                                  training=lab.training) as on_progress:
                progress = Driver(lab, graph, on_progress=on_progress).run()
        except BaselineFailed as error:
            print(f"{what} stopped: {error}")
            return 1
        except KeyboardInterrupt:
            print(f"\nstopped cleanly; `archlab resume {run_dir}` continues the {what}")
            return 130
    print(_summary(progress))
    print(f"archive: {run_dir}\n`archlab status {run_dir}` or `archlab ls {run_dir}` for details")
    return 0


def _summary(progress) -> str:
    """After the live panel (which stays on screen) a word is enough; elsewhere the standing in one line."""
    from archlab.live_view import on_terminal
    from archlab.progress import progress_line

    lines = [progress.message if on_terminal() else progress_line(progress)]
    if progress.stopped:
        lines.append(f"stopped: {progress.stopped}")
    return "\n".join(lines)


def _stop_on_sigterm() -> None:
    """`kill PID` stops a run as cleanly as Ctrl-C does: in-flight sandboxes are killed, the run is resumable."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
