"""What `archlab eval` shows while it evaluates: the worker's progress events, on stderr only.

stdout carries the result alone (the summary, or with `--json` exactly one JSON object), so the
progress never mixes into what a script reads. On a terminal one line is redrawn in place and
erased before the result is printed; elsewhere (CI, a pipe, `nohup`, TERM=dumb) each event is
one plain line, except with `--json`, where nothing is written: a script that captures stderr
gets only real errors there.
"""
from __future__ import annotations

import os
import shutil
import time
from typing import TextIO

from evaluator.progress import ProgressEvent

CLEAR_LINE = "\r\x1b[K"


def on_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


class EvalProgress:
    """The `on_progress` of one or more evaluations: redrawn on a terminal, or one line per event."""

    def __init__(self, stream: TextIO, *, redraw: bool):
        self._stream, self._redraw = stream, redraw
        self._started = time.monotonic()
        self._label = ""
        self._checks = ""  # the last check, kept on the terminal line while later phases run
        self._drawn = False

    def label(self, label: str) -> None:
        """Prefix every later line, e.g. 'baseline gated_delta_rule', when one call evaluates several targets."""
        self._label, self._checks = label, ""

    def __call__(self, event: ProgressEvent) -> None:
        text = event.describe()
        if self._redraw:
            if event.kind == "check":
                self._checks = f"checks {event.index}/{event.total}" if event.total > 1 else f"check {event.name}"
            text = f"{self._checks} · {text}" if self._checks and event.kind != "check" else text
        elapsed = time.monotonic() - self._started
        line = f"[{elapsed:6.1f}s] {self._label + ': ' if self._label else ''}{text}"
        if self._redraw:  # cut to the width: a wrapped line cannot be redrawn in place
            self._stream.write(f"{CLEAR_LINE}{line[:shutil.get_terminal_size().columns - 1]}")
            self._drawn = True
        else:
            self._stream.write(f"{line}\n")
        self._stream.flush()

    def close(self) -> None:
        """Erase the redrawn line, so that the result starts on a clean line."""
        if self._drawn:
            self._stream.write(CLEAR_LINE)
            self._stream.flush()
            self._drawn = False


def eval_progress(stream: TextIO, *, json_output: bool) -> EvalProgress | None:
    """The display the policy above chooses for `stream` (stderr), or None for no progress at all."""
    if on_terminal(stream):
        return EvalProgress(stream, redraw=True)
    return None if json_output else EvalProgress(stream, redraw=False)
