"""A directory's knowledge: its archive, its vector store, and the cognition base indexed in it.

A run directory is one; the knowledge home (`runs/_knowledge/` by default) is another, used by
`archlab knowledge add/search` outside a run. Both have the same layout:
`<dir>/archive.sqlite` and `<dir>/chroma/`.
"""
from __future__ import annotations

import os
from pathlib import Path

from knowledge.archive import ARCHIVE_FILE, Archive
from knowledge.cognition import COGNITION_DIR, index_cognition_base
from knowledge.embeddings import Embedder, make_embedder
from knowledge.notes import NotesImport, import_notes
from knowledge.vectors import Query, SearchHit, VectorStore

DEFAULT_KNOWLEDGE_HOME = Path("runs") / "_knowledge"
CHROMA_DIR = "chroma"


class KnowledgeBase:
    """Open with `KnowledgeBase.open(directory)`; the cognition base is indexed on first search."""

    def __init__(self, archive: Archive, store: VectorStore, cognition_dir: Path = COGNITION_DIR):
        self.archive = archive
        self.store = store
        self.cognition_dir = cognition_dir
        self._cognition_indexed = False

    @classmethod
    def open(cls, directory: str | os.PathLike[str] = DEFAULT_KNOWLEDGE_HOME,
             embedder: Embedder | str = "local", cognition_dir: Path = COGNITION_DIR) -> KnowledgeBase:
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        chosen = make_embedder(embedder) if isinstance(embedder, str) else embedder
        return cls(Archive.open(root / ARCHIVE_FILE), VectorStore(root / CHROMA_DIR, chosen), cognition_dir)

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.archive.close()

    def ensure_cognition(self) -> int:
        """Index the cognition base here (idempotent; unchanged entries are not re-embedded)."""
        count = index_cognition_base(self.archive, self.store, self.cognition_dir)
        self._cognition_indexed = True
        return count

    def search(self, query: Query, k: int = 5) -> list[SearchHit]:
        """Cognition entries, user notes, analyst insights and analyses closest to the query."""
        if not self._cognition_indexed:
            self.ensure_cognition()
        return self.store.search(query, k)

    def add_notes(self, path: str | os.PathLike[str]) -> NotesImport:
        return import_notes(Path(path), self.archive, self.store)
