"""A per-user cache of embeddings, so a text already embedded by the same model is never embedded again.

Every new run indexes the same cognition base; embedding it costs seconds of CPU each time for
identical vectors. Rows are keyed by the embedder's identity (model, version, device: a different
model never reuses vectors) and the sha256 of the text, in one SQLite file shared by every process
of the user (busy timeout, INSERT OR IGNORE). The cache only saves time: when the file is corrupt or
unwritable the wrapper warns once and embeds as if it were absent.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "ARCHLAB_CACHE_DIR"
CACHE_FILE = "embeddings.sqlite3"
BUSY_TIMEOUT_S = 30.0
LOOKUP_CHUNK = 500  # below SQLite's limit on bound parameters
_SCHEMA = ("CREATE TABLE IF NOT EXISTS embeddings (embedder TEXT NOT NULL, text_sha256 TEXT NOT NULL, "
           "vector BLOB NOT NULL, PRIMARY KEY (embedder, text_sha256)) WITHOUT ROWID")


class CacheableEmbedder(Protocol):
    """An embedder whose output is a deterministic function of the text, named by `cache_key`."""

    @property
    def name(self) -> str: ...

    @property
    def cache_key(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def cache_dir() -> Path:
    """$ARCHLAB_CACHE_DIR, else $XDG_CACHE_HOME/archlab, else ~/.cache/archlab."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "archlab"


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class CachedEmbedder:
    """Wraps a deterministic embedder; same `name`, so vector stores cannot tell the difference."""

    def __init__(self, inner: CacheableEmbedder, path: Path | None = None):
        self.inner = inner
        self.path = path if path is not None else cache_dir() / CACHE_FILE
        self._broken = False  # set on the first failure: warn once, then embed without the cache

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Cached rows for known texts; the inner embedder sees only the others, each once."""
        if not texts:
            return self.inner.embed(texts)
        keys = [text_sha256(t) for t in texts]
        found = self._lookup(set(keys))
        missing = {key: text for key, text in zip(keys, texts) if key not in found}
        if missing:
            fresh = self.inner.embed(list(missing.values()))
            found.update(zip(missing, fresh))
            self._store({key: found[key] for key in missing})
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        connection.execute(_SCHEMA)
        return connection

    def _lookup(self, keys: set[str]) -> dict[str, np.ndarray]:
        if self._broken:
            return {}
        found: dict[str, np.ndarray] = {}
        wanted = sorted(keys)
        try:
            connection = self._connect()
            try:
                for start in range(0, len(wanted), LOOKUP_CHUNK):
                    chunk = wanted[start:start + LOOKUP_CHUNK]
                    rows = connection.execute(
                        f"SELECT text_sha256, vector FROM embeddings WHERE embedder = ? "
                        f"AND text_sha256 IN ({','.join('?' * len(chunk))})", [self.inner.cache_key, *chunk])
                    for key, blob in rows:
                        vector = np.frombuffer(blob, dtype=np.float32)
                        if vector.shape == (self.inner.dimension,) and np.all(np.isfinite(vector)):
                            found[key] = vector  # a malformed row is a miss, overwritten below
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as error:
            self._fail(error)
        return found

    def _store(self, vectors: dict[str, np.ndarray]) -> None:
        if self._broken:
            return
        rows = [(self.inner.cache_key, key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in vectors.items()]
        try:
            connection = self._connect()
            try:
                with connection:
                    connection.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        self._broken = True
        log.warning("embedding cache %s is unusable (%s); embedding without it. Delete the file, or set %s "
                    "to a writable directory, to cache again", self.path, error, CACHE_ENV)
