"""The knowledge home (`<runs>/_knowledge/`): the cognition base and a user's notes, indexed
once, outside any run. Every run copies the user's notes from it into its own archive."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agents.session import KNOWLEDGE_HOME
from knowledge.archive import Archive
from knowledge.cognition import index_cognition_base
from knowledge.embeddings import make_embedder
from knowledge.vectors import VectorStore


@contextmanager
def open_home(runs_dir: Path, embedder: str = "local") -> Iterator[tuple[Archive, VectorStore]]:
    path = runs_dir / KNOWLEDGE_HOME
    path.mkdir(parents=True, exist_ok=True)
    with Archive.open(path / "archive.sqlite") as archive:
        store = VectorStore(path / "chroma", make_embedder(embedder))
        index_cognition_base(archive, store)
        yield archive, store
