"""Progress of one evaluation, streamed from the sandboxed worker to the orchestrator while it runs.

The channel is a pipe: the orchestrator creates it, the sandbox passes the write end to the worker
(bubblewrap keeps inherited descriptors), and the worker wraps it before arming its guards (nothing
is opened after). Each event is one JSON line, at most `MAX_LINE_BYTES` (so one atomic pipe write),
carrying an HMAC under a key that left the disk with the spec before candidate code ran.

Progress is advisory: it is shown to a person, never read into a result. Candidate code can find
the descriptor and write into it; the reader drops whatever is not a well-formed, sealed event of a
known kind (too long, not JSON, unsealed, out of range), so such writes can at most hide events.
The worker's end is non-blocking: a slow or gone reader drops events, it never stalls training.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import selectors
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

MAX_LINE_BYTES = 4096      # <= PIPE_BUF: a sealed event is written whole or not at all
MAX_EVENTS = 10_000        # delivered per evaluation; a flood beyond is read and dropped
READ_CHUNK = 1 << 16
POLL_SECONDS = 0.1
KINDS = ("phase", "check", "step")
MAX_NAME_CHARS = 40


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened: a phase began, a check ended, or training logged a step.

    `phase`: `name` is the phase (start: the sandbox starts the worker, checks, train, eval, measure). `check`: `name` and `passed`, `index`
    of `total`. `step`: `index` of `total` steps done, `loss`, `tokens_per_second` (None until measured).
    """

    kind: str
    name: str = ""
    passed: bool = True
    index: int = 0
    total: int = 0
    loss: float | None = None
    tokens_per_second: float | None = None
    elapsed_s: float = 0.0     # since the worker set up (after its imports), stamped when sent

    def describe(self) -> str:
        """One line for a person, e.g. 'step 20/30  loss 2.3104  41,200 tokens/s'."""
        if self.kind == "phase":
            return {"start": "starting the sandboxed worker", "checks": "checking", "train": "training", "eval": "held-out metrics",
                    "measure": "measuring latency and memory"}.get(self.name, self.name)
        if self.kind == "check":
            counted = f" {self.index}/{self.total}" if self.total > 1 else ""
            return f"check{counted} {self.name}: {'pass' if self.passed else 'FAIL'}"
        line = f"step {self.index}/{self.total}"
        if self.loss is not None:
            line += f"  loss {self.loss:.4f}"
        if self.tokens_per_second:
            line += f"  {self.tokens_per_second:,.0f} tokens/s"
        return line


ProgressCallback = Callable[[ProgressEvent], None]


def parse_event(data: Any) -> ProgressEvent | None:
    """The event `data` describes, or None for anything malformed: unknown kind or field, wrong type, out of range."""
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        return None
    try:
        event = ProgressEvent(**data)
    except TypeError:
        return None
    numbers_ok = all(isinstance(getattr(event, f), int) and not isinstance(getattr(event, f), bool)
                     and 0 <= getattr(event, f) <= 10**9 for f in ("index", "total"))
    floats_ok = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
                    for v in (event.loss, event.tokens_per_second, event.elapsed_s))
    if not (numbers_ok and floats_ok and isinstance(event.name, str) and isinstance(event.passed, bool)
            and len(event.name) <= MAX_NAME_CHARS and event.index <= max(event.total, 1)):
        return None
    return event


def make_writer(fd: int | None, key: str) -> ProgressCallback:
    """The worker's sender (made before arming): stamps, seals and writes each event to `fd`; a no-op without one.

    The key and the functions it uses live only in this closure, bound before candidate code loads
    and out of its reach (the guard refuses frames and the garbage collector's lists). Events that
    would block or fail are dropped.
    """
    if fd is None:
        return lambda event: None
    os.set_blocking(fd, False)
    secret, dumps, write, clock, start = key.encode(), json.dumps, os.write, time.perf_counter, time.perf_counter()

    def send(event: ProgressEvent) -> None:
        body = dumps({**asdict(event), "elapsed_s": round(clock() - start, 3)}, sort_keys=True)
        line = dumps({"event": body, "mac": _mac(secret, body)}).encode() + b"\n"
        if len(line) > MAX_LINE_BYTES:
            return
        try:
            write(fd, line)
        except OSError:  # full (a slow reader) or closed (a gone one): progress is advisory
            pass
    return send


class ProgressReader:
    """The orchestrator's end: a pipe whose write end goes to the worker, drained by one thread that
    calls `on_progress` with each sealed event, in order. Call `close_writer()` once the worker is
    spawned or gone and `finish()` before using the result: every event is delivered by then."""

    def __init__(self, on_progress: ProgressCallback, key: str):
        self._on_progress, self._secret = on_progress, key.encode()
        self._read_fd, self.write_fd = os.pipe()
        self._give_up = threading.Event()
        self._delivered = 0
        self._thread = threading.Thread(target=self._drain, name="eval-progress", daemon=True)
        self._thread.start()

    def close_writer(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def finish(self, grace_seconds: float = 1.0) -> None:
        """Wait up to `grace_seconds` for end-of-file (all writers gone), then stop reading and close.

        Returns at once when the job's processes are all gone; idempotent."""
        self.close_writer()
        if self._read_fd < 0:
            return
        self._thread.join(timeout=grace_seconds)
        self._give_up.set()
        self._thread.join()
        os.close(self._read_fd)
        self._read_fd = -1

    def _drain(self) -> None:
        pending, skipping = b"", False  # skipping: inside a line already longer than allowed
        with selectors.DefaultSelector() as selector:
            selector.register(self._read_fd, selectors.EVENT_READ)
            while not self._give_up.is_set():
                if not selector.select(timeout=POLL_SECONDS):
                    continue
                chunk = os.read(self._read_fd, READ_CHUNK)
                if not chunk:
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if not skipping:
                        self._deliver(line)
                    skipping = False
                if len(pending) > MAX_LINE_BYTES:
                    pending, skipping = b"", True

    def _deliver(self, line: bytes) -> None:
        if self._delivered >= MAX_EVENTS:
            return
        event = self._unseal(line)
        if event is None:
            return
        self._delivered += 1
        try:
            self._on_progress(event)
        except Exception as error:  # noqa: BLE001 - a broken display must not end the evaluation
            print(f"archlab: showing progress failed ({type(error).__name__}: {error}); the evaluation goes on "
                  "without it", file=sys.stderr)
            self._delivered = MAX_EVENTS

    def _unseal(self, line: bytes) -> ProgressEvent | None:
        try:
            sealed = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(sealed, dict) or not all(isinstance(sealed.get(k), str) for k in ("event", "mac")):
            return None
        if not hmac.compare_digest(sealed["mac"], _mac(self._secret, sealed["event"])):
            return None
        return parse_event(json.loads(sealed["event"]))


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()


class LatestProgress:
    """The last event of each evaluation in flight, by a caller's key (an experiment id): what a live
    view shows as "step n/N". Written by reader threads, read by the view's thread."""

    def __init__(self) -> None:
        self._latest: dict[str, ProgressEvent] = {}
        self._lock = threading.Lock()

    def note(self, key: str, event: ProgressEvent) -> None:
        with self._lock:
            self._latest[key] = event

    def clear(self, key: str) -> None:
        with self._lock:
            self._latest.pop(key, None)

    def get(self, key: str) -> ProgressEvent | None:
        with self._lock:
            return self._latest.get(key)
