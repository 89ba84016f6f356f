"""Finding runs under the served runs directory, and a small cache of their snapshots.

A run is addressed by its folder name only; a name that is not a plain folder name, or whose
folder resolves (through symbolic links) outside the runs directory, is not found.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from agents.config import NAME_PATTERN
from archlab.insights.snapshot import RunSnapshot, fingerprint, refresh
from archlab.rundir import CONFIG_FILE
from archlab.runlock import driver_of

EXPERIMENT_ID = NAME_PATTERN  # ids are e0007; anything else a client sends is refused by the same rule


class RunNotFound(LookupError):
    """No run of that name under the runs directory; the message says which runs there are."""


def run_names(runs_dir: Path) -> list[str]:
    if not runs_dir.is_dir():
        return []
    return sorted(p.name for p in runs_dir.iterdir() if _inside(runs_dir, p) and (p / CONFIG_FILE).is_file())


def _inside(runs_dir: Path, path: Path) -> bool:
    try:
        return path.resolve().parent == runs_dir.resolve()
    except OSError:
        return False


def find_run_dir(runs_dir: Path, name: str) -> Path:
    if not NAME_PATTERN.match(name) or name in (".", ".."):
        raise RunNotFound(f"{name!r} is not a run name (letters, digits, '.', '_' and '-')")
    path = runs_dir / name
    if not _inside(runs_dir, path) or not (path / CONFIG_FILE).is_file():
        known = ", ".join(run_names(runs_dir)) or "none"
        raise RunNotFound(f"no run {name!r} in {runs_dir} (runs: {known})")
    return path


class SnapshotCache:
    """The latest snapshot of the most recently viewed runs. When a run's archive changed (its
    fingerprint) the next snapshot is made from the last one, decoding only the experiments
    that changed; what pages derive from a snapshot (rows, summary, lineage) lives in its memo,
    kept while the experiments are unchanged. Who drives the run is asked afresh on every
    request: a driver can end without writing."""

    def __init__(self, size: int = 8, drawings: int = 128):
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, tuple[str, RunSnapshot]] = OrderedDict()
        self._drawings_size = drawings
        self._drawings: OrderedDict[Any, Any] = OrderedDict()

    def get(self, run_dir: Path) -> RunSnapshot:
        stamp = fingerprint(run_dir)  # taken before reading: a write after it makes the next request read again
        with self._lock:
            cached = self._entries.get(run_dir)
            if cached is not None:
                self._entries.move_to_end(run_dir)
        if cached is not None and cached[0] == stamp:
            holder = driver_of(run_dir)
            return dataclasses.replace(cached[1], driver=holder.describe() if holder else "", taken_at=time.time())
        snapshot = refresh(cached[1] if cached is not None else None, run_dir)
        with self._lock:
            self._entries[run_dir] = (stamp, snapshot)
            self._entries.move_to_end(run_dir)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return snapshot

    def drawing(self, key: Any, make: Callable[[], Any]) -> Any:
        """A plot by what it shows (`key`: a hashable of its inputs): redrawn only when they change,
        not on every write to the archive (a running run writes every few seconds)."""
        key = _HashedOnce(key)
        with self._lock:
            svg = self._drawings.get(key)
            if svg is not None:
                self._drawings.move_to_end(key)
                return svg
        svg = make()
        with self._lock:
            self._drawings[key] = svg
            while len(self._drawings) > self._drawings_size:
                self._drawings.popitem(last=False)
        return svg


class _HashedOnce:
    """A drawing's key, hashed once: a lineage's key holds thousands of nodes, and a tuple does
    not keep its hash. Equal when the keys are (tuples compare items by identity first, so an
    unchanged lineage compares fast)."""

    __slots__ = ("key", "hash")

    def __init__(self, key: Any):
        self.key, self.hash = key, hash(key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _HashedOnce) and self.hash == other.hash and self.key == other.key


def version(run_dir: Path) -> str:
    """What a page polls: it changes when the archive is written or the driver comes or goes."""
    return f"{fingerprint(run_dir)}-{'driven' if driver_of(run_dir) else 'idle'}"
