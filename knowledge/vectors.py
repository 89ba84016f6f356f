"""The vector store: embedded ChromaDB under `<run_dir>/chroma/`, derived from the archive.

SQLite is the source of truth; this index exists for retrieval (insights for the researcher)
and novelty (motivations close to a new proposal). It can be dropped and rebuilt from the
archive at any time, and `check_consistency` says whether it still mirrors it. We always pass
our own vectors: chroma's default embedding function downloads a model, which fails offline.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.embeddings import Embedder, unit_rows
from knowledge.records import Experiment, Insight

if TYPE_CHECKING:
    from knowledge.archive import Archive

MOTIVATIONS, ANALYSES, INSIGHTS = "motivations", "analyses", "insights"
COLLECTIONS = (MOTIVATIONS, ANALYSES, INSIGHTS)
PAGE = 5000
HEADLINE_SUFFIX = "#headline"
Query = str | Sequence[float] | np.ndarray


class EmbedderMismatchError(RuntimeError):
    """Vectors of two different models are not comparable; the store must be rebuilt."""


@dataclass(frozen=True)
class MotivationHit:
    experiment_id: str
    name: str
    motivation: str
    score: float                     # cosine similarity, 1.0 = same direction
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InsightHit:
    insight: Insight
    score: float


@dataclass(frozen=True)
class SearchHit:
    """One retrieved piece of knowledge: an insight (cognition, user, analysis) or an analysis."""

    kind: str                        # "insight" or "analysis"
    id: str
    title: str
    text: str
    source: str
    score: float
    experiment_id: str | None = None


@dataclass(frozen=True)
class ConsistencyReport:
    """Entries as "<collection>:<entry id>". missing: in the archive, not indexed; stale: indexed
    but gone from the archive or out of date; duplicated: a record also indexed under an id it
    should not have (indexed more than once)."""

    missing: list[str]
    stale: list[str]
    duplicated: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.duplicated)


def analysis_text(analysis: dict[str, Any]) -> str:
    """The analyst's structured findings as one text to embed (keys sorted: stable across reads)."""
    lines = []
    for key in sorted(analysis):
        value = analysis[key]
        rendered = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        if rendered:
            lines.append(f"{key}: {rendered}")
    return "\n".join(lines)


def _experiment_metadata(exp: Experiment) -> dict[str, Any]:
    data: dict[str, Any] = {"record_id": exp.id, "experiment_id": exp.id, "name": exp.name, "run": exp.run,
                            "status": exp.status, "stage": exp.stage.value, "proposer": exp.proposer}
    if exp.fitness is not None:
        data["fitness"] = exp.fitness.value
    return data


def _insight_metadata(ins: Insight) -> dict[str, Any]:
    data: dict[str, Any] = {"record_id": ins.id, "title": ins.title, "source": ins.source, "run": ins.run,
                            "extra": json.dumps(ins.metadata, sort_keys=True)}
    if ins.experiment_id is not None:
        data["experiment_id"] = ins.experiment_id
    return data


def _insight_from(metadata: dict[str, Any], document: str) -> Insight:
    return Insight(id=metadata["record_id"], title=metadata["title"], text=document, source=metadata["source"],
                   run=metadata.get("run", ""), experiment_id=metadata.get("experiment_id"),
                   metadata=json.loads(metadata.get("extra", "{}")))


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Entry:
    """What one record should look like in one collection."""

    id: str
    document: str
    embed_text: str
    metadata: dict[str, Any]


def _experiment_entries(exp: Experiment) -> dict[str, _Entry]:
    entries = {}
    if exp.motivation.strip():
        entries[MOTIVATIONS] = _Entry(exp.id, exp.motivation, exp.motivation, _experiment_metadata(exp))
    text = analysis_text(exp.analysis)
    if text:
        entries[ANALYSES] = _Entry(exp.id, text, text, _experiment_metadata(exp))
    return entries


def _insight_entries(ins: Insight) -> list[_Entry]:
    """The full text, plus a headline key (title and tags) when the insight has tags.

    A long text's embedding blurs into its details; the curated tags say what the entry is
    about. Searching both and keeping the better score ranks entries by either.
    """
    keys = [("text", ins.id, f"{ins.title}\n\n{ins.text}")]
    tags = ins.metadata.get("tags")
    if isinstance(tags, list) and tags:
        keys.append(("headline", f"{ins.id}{HEADLINE_SUFFIX}", f"{ins.title}. {', '.join(map(str, tags))}"))
    return [_Entry(entry_id, ins.text, embed_text,
                   _insight_metadata(ins) | {"key": key, "fingerprint": _fingerprint(embed_text)})
            for key, entry_id, embed_text in keys]


class VectorStore:
    """Motivations, analyses and insights of one run (or of the knowledge home), cosine space."""

    def __init__(self, path: str | os.PathLike[str], embedder: Embedder):
        import chromadb
        from chromadb.config import Settings

        self.path = Path(path)
        self.embedder = embedder
        self.path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(path=str(self.path), settings=Settings(anonymized_telemetry=False))
        self._max_batch = self._client.get_max_batch_size()
        self._collections = {name: self._open(name) for name in COLLECTIONS}

    def _open(self, name: str) -> Any:
        return self._client.get_or_create_collection(
            name, configuration={"hnsw": {"space": "cosine"}}, metadata={"embedder": self.embedder.name},
            embedding_function=None)

    def _collection(self, name: str) -> Any:
        collection = self._collections[name]
        built_with = (collection.metadata or {}).get("embedder")
        if built_with != self.embedder.name:
            raise EmbedderMismatchError(
                f"the vector store at {self.path} was built with {built_with!r} but the embedder is "
                f"{self.embedder.name!r}; rebuild it from the archive (VectorStore.rebuild)")
        return collection

    # -- writing -------------------------------------------------------------------------------

    def _upsert(self, name: str, entries: list[_Entry], vectors: np.ndarray | None = None) -> None:
        """Upsert entries, embedding only those whose document changed (metadata is always refreshed)."""
        collection = self._collection(name)
        if not entries:
            return
        if vectors is None:
            current = {}
            for start in range(0, len(entries), self._max_batch):
                ids = [e.id for e in entries[start:start + self._max_batch]]
                found = collection.get(ids=ids, include=["documents", "metadatas"])
                current.update(zip(found["ids"], zip(found["documents"], found["metadatas"])))
            unchanged = [e for e in entries if e.id in current and current[e.id][0] == e.document
                         and current[e.id][1].get("fingerprint") == e.metadata.get("fingerprint")]
            for start in range(0, len(unchanged), self._max_batch):
                batch = unchanged[start:start + self._max_batch]
                collection.update(ids=[e.id for e in batch], metadatas=[e.metadata for e in batch])
            same = {e.id for e in unchanged}
            entries = [e for e in entries if e.id not in same]
            if not entries:
                return
            vectors = self.embedder.embed([e.embed_text for e in entries])
        vectors = unit_rows(vectors)
        if len(vectors) != len(entries):
            raise ValueError(f"{len(vectors)} vectors given for {len(entries)} records")
        for start in range(0, len(entries), self._max_batch):
            batch = entries[start:start + self._max_batch]
            collection.upsert(ids=[e.id for e in batch], embeddings=vectors[start:start + self._max_batch],
                              documents=[e.document for e in batch], metadatas=[e.metadata for e in batch])

    def index_experiment(self, exp: Experiment) -> None:
        """Index (or refresh) an experiment's motivation and analysis; idempotent."""
        self.index_experiments([exp])

    def index_experiments(self, experiments: Sequence[Experiment],
                          motivation_vectors: np.ndarray | None = None) -> None:
        """Batch form; `motivation_vectors` (one row per experiment with a motivation, in order)
        skips embedding, for callers that already hold them."""
        by_collection: dict[str, list[_Entry]] = {MOTIVATIONS: [], ANALYSES: []}
        for exp in experiments:
            for name, entry in _experiment_entries(exp).items():
                by_collection[name].append(entry)
        self._upsert(MOTIVATIONS, by_collection[MOTIVATIONS], motivation_vectors)
        self._upsert(ANALYSES, by_collection[ANALYSES])
        emptied = [exp.id for exp in experiments if not exp.motivation.strip()]
        emptied_analyses = [exp.id for exp in experiments if not analysis_text(exp.analysis)]
        if emptied:
            self._collection(MOTIVATIONS).delete(ids=emptied)
        if emptied_analyses:
            self._collection(ANALYSES).delete(ids=emptied_analyses)

    def index_insight(self, insight: Insight) -> None:
        self.index_insights([insight])

    def index_insights(self, insights: Iterable[Insight]) -> None:
        """Idempotent: an unchanged insight is not embedded again."""
        insights = list(insights)
        self._upsert(INSIGHTS, [entry for ins in insights for entry in _insight_entries(ins)])
        untagged = [f"{ins.id}{HEADLINE_SUFFIX}" for ins in insights if len(_insight_entries(ins)) == 1]
        if untagged:  # tags removed since the last time: drop the old headline key
            self._collection(INSIGHTS).delete(ids=untagged)

    def delete_insights(self, ids: Sequence[str]) -> None:
        """Remove insights (all their keys) from the index."""
        if ids:
            self._collection(INSIGHTS).delete(where={"record_id": {"$in": list(ids)}})

    # -- reading -------------------------------------------------------------------------------

    def _vector(self, query: Query) -> np.ndarray:
        if isinstance(query, str):
            if not query.strip():
                raise ValueError("empty query: give a text or a vector")
            return self.embedder.embed([query])[0]
        return unit_rows(query)[0]

    def _query(self, name: str, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple]:
        if k <= 0:
            return []
        found = self._collection(name).query(query_embeddings=vector[None, :], n_results=k, where=where or None,
                                 include=["documents", "metadatas", "distances"])
        return list(zip(found["ids"][0], found["documents"][0], found["metadatas"][0],
                        (1.0 - d for d in found["distances"][0])))

    def nearest_motivations(self, query: Query, k: int = 5, where: dict[str, Any] | None = None,
                            exclude: Sequence[str] = ()) -> list[MotivationHit]:
        """Archived motivations closest to a text or a precomputed vector, best first."""
        rows = self._query(MOTIVATIONS, self._vector(query), k + len(exclude), where)
        hits = [MotivationHit(i, meta.get("name", ""), doc, score, meta)
                for i, doc, meta, score in rows if i not in set(exclude)]
        return hits[:k]

    def search_insights(self, query: Query, k: int = 5, where: dict[str, Any] | None = None) -> list[InsightHit]:
        """Insights (cognition base, user notes, analyst findings) closest to the query, best first."""
        return [InsightHit(_insight_from(meta, doc), score)
                for _, doc, meta, score in self._best_insights(self._vector(query), k, where)]

    def _best_insights(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple]:
        """Top k insights, each once, scored by its best key."""
        best: dict[str, tuple] = {}
        for row in self._query(INSIGHTS, vector, 2 * k, where):
            record = row[2]["record_id"]
            if record not in best or row[3] > best[record][3]:
                best[record] = (record, *row[1:])
        return sorted(best.values(), key=lambda row: -row[3])[:k]

    def search(self, query: Query, k: int = 5, where: dict[str, Any] | None = None) -> list[SearchHit]:
        """Across insights and experiment analyses, merged by score."""
        vector = self._vector(query)
        hits = [SearchHit("insight", i, meta["title"], doc, meta["source"], score, meta.get("experiment_id"))
                for i, doc, meta, score in self._best_insights(vector, k, where)]
        hits += [SearchHit("analysis", i, meta.get("name", ""), doc, "analysis", score, i)
                 for i, doc, meta, score in self._query(ANALYSES, vector, k, where)]
        return sorted(hits, key=lambda hit: -hit.score)[:k]

    def count(self, name: str) -> int:
        return self._collection(name).count()

    # -- maintenance ---------------------------------------------------------------------------

    def rebuild(self, archive: Archive) -> None:
        """Drop every collection and index everything again from the archive (also switches embedder)."""
        for name in COLLECTIONS:
            if name in {c.name for c in self._client.list_collections()}:
                self._client.delete_collection(name)
            self._collections[name] = self._open(name)
        self.index_experiments(archive.experiments())
        self.index_insights(archive.insights())

    def entries(self, name: str, where: dict[str, Any] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """Every (id, document, metadata) of one collection, for inspection and consistency checks."""
        collection = self._collection(name)
        entries = []
        for offset in range(0, collection.count(), PAGE):
            found = collection.get(limit=PAGE, offset=offset, where=where or None,
                                   include=["documents", "metadatas"])
            entries += zip(found["ids"], found["documents"], found["metadatas"])
        return entries

    def repair(self, archive: Archive) -> ConsistencyReport:
        """Fix what `check_consistency` finds, touching only those entries (a rebuild re-embeds
        everything); returns what was found. For after a crash between an archive write and
        its indexing."""
        report = self.check_consistency(archive)
        if report.ok:
            return report
        experiments = {exp.id: exp for exp in archive.experiments()}
        insights = {ins.id: ins for ins in archive.insights()}
        reindex: dict[str, set[str]] = {MOTIVATIONS: set(), ANALYSES: set(), INSIGHTS: set()}
        for item in report.missing + report.stale + report.duplicated:
            name, entry_id = item.split(":", 1)
            record = entry_id.removesuffix(HEADLINE_SUFFIX) if name == INSIGHTS else entry_id
            live = insights if name == INSIGHTS else experiments
            if item in report.duplicated or record not in live:
                self._collection(name).delete(ids=[entry_id])
            if record in live:
                reindex[name].add(record)
        self.index_experiments([experiments[i] for i in sorted(reindex[MOTIVATIONS] | reindex[ANALYSES])])
        self.index_insights([insights[i] for i in sorted(reindex[INSIGHTS])])
        return report

    def check_consistency(self, archive: Archive) -> ConsistencyReport:
        """Compare the index with the archive: every record indexed exactly once and up to date."""
        expected: dict[str, dict[str, _Entry]] = {name: {} for name in COLLECTIONS}
        for exp in archive.experiments():
            for name, entry in _experiment_entries(exp).items():
                expected[name][entry.id] = entry
        for ins in archive.insights():
            for entry in _insight_entries(ins):
                expected[INSIGHTS][entry.id] = entry
        missing, stale, duplicated = [], [], []
        for name in COLLECTIONS:
            wanted = expected[name]
            records = {entry.metadata["record_id"] for entry in wanted.values()}
            present = set()
            for entry_id, document, metadata in self.entries(name):
                present.add(entry_id)
                want = wanted.get(entry_id)
                if want is None and metadata.get("record_id") in records:
                    duplicated.append(f"{name}:{entry_id}")  # a live record under an extra id
                elif want is None or want.document != document or want.metadata != metadata:
                    stale.append(f"{name}:{entry_id}")
            missing += [f"{name}:{i}" for i in wanted if i not in present]
        return ConsistencyReport(sorted(missing), sorted(stale), sorted(duplicated))
