"""Search the analysts' findings across the runs of a runs directory (`archlab knowledge search --runs`).

Each run is opened read-only: its archive (the source of truth) with `readonly=True`, and its
ChromaDB index when that can be opened. On read-only storage ChromaDB cannot open its index, so the
run's analyses are embedded from the archive instead (the same vectors the index holds). A run that
cannot be read at all is skipped with a note: one broken run never hides the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archlab.rundir import CONFIG_FILE, load_run_config, open_for_reading
from knowledge.embeddings import Embedder, make_embedder
from knowledge.records import Experiment
from knowledge.vectors import SearchHit, VectorStore, analysis_text

INDEX_FILE = "chroma.sqlite3"  # what ChromaDB keeps under RUN/chroma once the run has indexed anything


@dataclass(frozen=True)
class Found:
    """One search result; `run` and `experiment_id` are set for an analyst's finding in a run."""

    score: float
    source: str                  # "analysis", "cognition" or "user"
    title: str
    text: str
    run: str = ""
    experiment_id: str | None = None
    fitness: float | None = None


@dataclass
class RunsSearch:
    found: list[Found] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # "run NAME: why", for the person to fix or ignore


def from_home(hit: SearchHit) -> Found:
    return Found(score=hit.score, source=hit.source, title=hit.title, text=hit.text, experiment_id=hit.experiment_id)


def lessons_text(exp: Experiment) -> str:
    """What the analyst concluded, short: the lessons if there are any, else the summary, else everything."""
    lessons = exp.analysis.get("lessons")
    if isinstance(lessons, list) and lessons:
        return "lessons: " + "; ".join(str(lesson) for lesson in lessons)
    summary = exp.analysis.get("summary")
    return str(summary) if summary else analysis_text(exp.analysis)


def run_dirs(runs_dir: Path) -> list[Path]:
    return sorted(p for p in runs_dir.iterdir() if (p / CONFIG_FILE).is_file()) if runs_dir.is_dir() else []


def search_runs(runs_dir: Path, query: str, k: int) -> RunsSearch:
    """The k findings closest to `query` in each run of `runs_dir` (callers merge and cut)."""
    result, embedders = RunsSearch(), {}
    for run_dir in run_dirs(runs_dir):
        try:
            result.found += _search_run(run_dir, query, k, embedders)
        except Exception as error:  # noqa: BLE001 - whatever broke this run, the others are still searched
            result.skipped.append(f"run {run_dir.name}: {type(error).__name__}: {error}")
    return result


def _search_run(run_dir: Path, query: str, k: int, embedders: dict[str, Embedder]) -> list[Found]:
    config = load_run_config(run_dir)
    name = config.name or run_dir.name
    with open_for_reading(run_dir) as archive:
        analysed = {e.id: e for e in archive.experiments(run=name) if analysis_text(e.analysis)}
    if not analysed:
        return []
    if config.embedder not in embedders:
        embedders[config.embedder] = make_embedder(config.embedder)
    embedder = embedders[config.embedder]
    vector = embedder.embed([query])[0]
    scores = _from_index(run_dir, embedder, vector, k, name) if (run_dir / "chroma" / INDEX_FILE).is_file() else None
    if scores is None:
        scores = _from_archive(list(analysed.values()), embedder, vector, k)
    found = []
    for exp_id, score in scores:
        exp = analysed.get(exp_id)
        if exp is not None:  # an index entry the archive no longer has is stale: the archive wins
            found.append(Found(score=score, source="analysis", title=exp.name, text=lessons_text(exp), run=name,
                               experiment_id=exp.id, fitness=exp.fitness.value if exp.fitness else None))
    return found


def _from_index(run_dir: Path, embedder: Embedder, vector: np.ndarray, k: int, run: str) -> list[tuple] | None:
    """(experiment id, score) from the run's ChromaDB index; None when it cannot be opened (read-only storage)."""
    try:
        store = VectorStore(run_dir / "chroma", embedder)
        hits = store.search(vector, k=k, where={"run": run})
    except Exception:  # noqa: BLE001 - ChromaDB raises its own errors for unwritable storage; the archive answers
        return None
    return [(hit.id, hit.score) for hit in hits if hit.kind == "analysis"]


def _from_archive(experiments: list[Experiment], embedder: Embedder, vector: np.ndarray, k: int) -> list[tuple]:
    """(experiment id, cosine score) by embedding the analyses as the index does."""
    vectors = embedder.embed([analysis_text(e.analysis) for e in experiments])
    scores = vectors @ vector
    order = np.argsort(-scores)[:k]
    return [(experiments[i].id, float(scores[i])) for i in order]
