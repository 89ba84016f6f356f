"""`archlab knowledge search QUERY --runs`: the analysts' findings of every run in the runs directory,
searched with the cognition base and notes; each result names its run and experiment. Runs are opened
read-only (one on read-only storage is still searched) and an unreadable run is skipped with a note."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.embeddings import make_embedder
from knowledge.vectors import VectorStore
from tests.cli_support import cli, make_run

pytestmark = pytest.mark.slow  # each search loads the embedding model; the first indexes the cognition base

LESSONS = {
    "alpha": "a larger recurrent state stores more key-value pairs, so associative recall holds at long lengths",
    "frozen": "a short causal convolution before the mixer sharpens local token shifts",
}


def analysed_run(runs_dir: Path, name: str) -> Path:
    """A run whose proposal e0002 has an analysis, indexed in the run's ChromaDB as the analyst leaves it."""
    run_dir = make_run(runs_dir, name, awaiting=False)
    with Archive.open(run_dir / "archive.sqlite") as archive:
        archive.update_experiment("e0002", analysis={"summary": "it helped", "lessons": [LESSONS[name]]})
        VectorStore(run_dir / "chroma", make_embedder()).index_experiments(archive.experiments(run=name))
    return run_dir


def set_writable(root: Path, writable: bool) -> None:
    for item in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(item.stat().st_mode)
        item.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Shared by the tests: the knowledge home's cognition base is indexed once, by the first search."""
    runs = tmp_path_factory.mktemp("knowledge") / "runs"
    analysed_run(runs, "alpha")
    frozen = analysed_run(runs, "frozen")
    broken = runs / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    set_writable(frozen, False)  # ChromaDB cannot open this index; the archive still answers
    yield runs
    set_writable(frozen, True)


def test_search_across_runs_names_run_and_experiment(runs_dir, tmp_path):
    result = cli("knowledge", "search", "larger state for associative recall at long lengths", "--runs",
                 "--runs-dir", str(runs_dir), "--k", "1000", "--json", cwd=tmp_path, unprivileged=True)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)  # stdout stays one JSON document; notes go to stderr
    from_runs = {(h["run"], h["experiment_id"]): h for h in hits if h["source"] == "analysis"}
    assert set(from_runs) == {("alpha", "e0002"), ("frozen", "e0002")}
    assert LESSONS["alpha"] in from_runs[("alpha", "e0002")]["text"]
    assert from_runs[("alpha", "e0002")]["fitness"] == pytest.approx(0.05)
    assert from_runs[("alpha", "e0002")]["score"] > from_runs[("frozen", "e0002")]["score"]
    assert any(h["source"] == "cognition" for h in hits)  # the cognition base is searched too
    assert "skipped run broken:" in result.stderr and "config.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (runs_dir / "frozen" / "archive.sqlite-wal").exists()  # opened read-only


def test_plain_output_says_where_each_finding_comes_from(runs_dir, tmp_path):
    result = cli("knowledge", "search", "short convolution for local shifts", "--runs", "--runs-dir", str(runs_dir),
                 "--k", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[analysis] run frozen e0002 wider_state (fitness +0.0500)" in result.stdout
    assert "lessons: " + LESSONS["frozen"][:40] in result.stdout


def test_without_runs_only_the_home_is_searched(runs_dir, tmp_path):
    result = cli("knowledge", "search", "larger state for associative recall", "--runs-dir", str(runs_dir),
                 "--k", "1000", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not [h for h in json.loads(result.stdout) if h["source"] == "analysis"]
