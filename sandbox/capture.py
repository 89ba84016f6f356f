"""Draining a job's stdout and stderr so that a flood can neither block the job nor fill the disk.

The job writes into pipes; one thread here reads both. Each log file gets the first `keep_bytes`
of its stream, a marker saying how much was left out, and the last `keep_bytes`; the outcome
gets only the last `keep_bytes`. Whatever the job prints, a log never exceeds twice the limit.
"""
from __future__ import annotations

import os
import selectors
import threading
from dataclasses import dataclass
from pathlib import Path

READ_CHUNK = 1 << 16
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class CapturedStream:
    path: Path
    total_bytes: int
    truncated: bool
    tail: str  # the last `keep_bytes` of the stream, marked when earlier bytes are not shown


class _CappedLog:
    """Head of the stream straight to the file; a rolling window of its end in memory."""

    def __init__(self, path: Path, keep_bytes: int):
        self.path = path
        self._file = path.open("wb")
        self._keep = keep_bytes
        self._head_bytes = 0
        self._last = bytearray()
        self.total_bytes = 0

    def add(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        if self._head_bytes < self._keep:
            head = chunk[: self._keep - self._head_bytes]
            self._file.write(head)
            self._head_bytes += len(head)
        self._last += chunk
        del self._last[: max(0, len(self._last) - self._keep)]

    def close(self) -> CapturedStream:
        after_head = self.total_bytes - self._head_bytes
        shown_after_head = min(after_head, len(self._last))
        left_out = after_head - shown_after_head
        if left_out:
            self._file.write(f"\n[archlab sandbox: {left_out} bytes left out]\n".encode())
        if shown_after_head:
            self._file.write(self._last[len(self._last) - shown_after_head:])
        self._file.close()
        tail = self._last.decode("utf-8", errors="replace")
        hidden = self.total_bytes - len(self._last)
        if hidden:
            tail = f"[archlab sandbox: {hidden} earlier bytes not shown]\n{tail}"
        return CapturedStream(self.path, self.total_bytes, truncated=left_out > 0 or hidden > 0, tail=tail)


class OutputCapture:
    """Pipes for the job's output streams, each drained into a capped log file by one thread.

    Pass `writers` to the child, then call `close_writers()` in the parent so that the pipes
    report end-of-file once the job's processes are gone.
    """

    def __init__(self, log_paths: list[Path], keep_bytes: int):
        logs = [_CappedLog(path, keep_bytes) for path in log_paths]
        pipes = [os.pipe() for _ in log_paths]
        self.writers = [write_end for _, write_end in pipes]
        self._logs = {read_end: log for (read_end, _), log in zip(pipes, logs)}
        self._open = set(self._logs)
        self._give_up = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="sandbox-output", daemon=True)
        self._thread.start()

    def close_writers(self) -> None:
        for descriptor in self.writers:
            os.close(descriptor)
        self.writers = []

    def _drain(self) -> None:
        with selectors.DefaultSelector() as selector:
            for descriptor in self._open:
                selector.register(descriptor, selectors.EVENT_READ)
            while self._open and not self._give_up.is_set():
                for key, _ in selector.select(timeout=POLL_SECONDS):
                    chunk = os.read(key.fd, READ_CHUNK)
                    if chunk:
                        self._logs[key.fd].add(chunk)
                    else:
                        selector.unregister(key.fd)
                        self._open.discard(key.fd)

    def finish(self, grace_seconds: float) -> list[CapturedStream]:
        """Wait up to `grace_seconds` for every writer to be gone, then close the logs (in `log_paths` order).

        With the job's processes all killed this returns at once; the grace only matters where a
        process escaped the kill (the weakest fallback) and still holds a pipe open.
        """
        self._thread.join(timeout=grace_seconds)
        self._give_up.set()
        self._thread.join()
        self.close_writers()
        results = [log.close() for log in self._logs.values()]
        for descriptor in self._logs:
            os.close(descriptor)
        return results
