"""The vector store on a real embedded ChromaDB: indexing, queries, rebuild, consistency, novelty."""
from __future__ import annotations

import numpy as np
import pytest

from knowledge.archive import Archive
from knowledge.embeddings import local_minilm
from knowledge.novelty import MotivationNovelty
from knowledge.records import Experiment, Fitness, Insight, Stage
from knowledge.vectors import ANALYSES, INSIGHTS, MOTIVATIONS, EmbedderMismatchError, VectorStore

MOTIVATIONS_TEXT = {
    "e0001": "Replace additive updates with the delta rule so the fixed-size state overwrites stale associations.",
    "e0002": "Add a short causal convolution before the projections to capture local n-gram patterns.",
    "e0003": "Use a data-dependent scalar decay per head so the recurrence can forget irrelevant context.",
    "e0004": "Swap the softmax for a second-order Taylor feature map to keep attention's spikiness in linear time.",
}


FINDINGS = ["recall improved on long sequences", "bigram loss dropped quickly",
            "forgetting helped language modelling", "throughput fell by half"]


@pytest.fixture(scope="session")
def embedder():
    return local_minilm()


@pytest.fixture
def filled(tmp_path, embedder):
    """An archive with four experiments and two insights, indexed."""
    with Archive.open(tmp_path) as archive:
        for i, (exp_id, text) in enumerate(MOTIVATIONS_TEXT.items()):
            archive.add_experiment(Experiment(
                id=exp_id, run="r1", name=f"idea-{i}", motivation=text, stage=Stage.ANALYZED, status="ok",
                fitness=Fitness(value=0.1 * i), analysis={"summary": FINDINGS[i], "verdict": "keep" if i else ""}))
        archive.add_insights([
            Insight(id="i1", title="Decay gates", text="Forgetting through gates stabilises long contexts.",
                    source="analysis", run="r1", experiment_id="e0003", metadata={"tags": ["decay", "gates"]}),
            Insight(id="i2", title="Warmup", text="Learning rate warmup avoids early divergence.", source="user"),
        ])
        store = VectorStore(tmp_path / "chroma", embedder)
        store.index_experiments(archive.experiments())
        store.index_insights(archive.insights())
        yield archive, store


def test_nearest_motivations_by_text_and_by_vector(filled, embedder):
    _, store = filled
    hits = store.nearest_motivations("overwrite old associations in the memory with a delta update", k=2)
    assert [h.experiment_id for h in hits][0] == "e0001" and hits[0].name == "idea-0"
    assert hits[0].score > hits[1].score and hits[0].motivation == MOTIVATIONS_TEXT["e0001"]
    vector = embedder.embed([MOTIVATIONS_TEXT["e0002"]])[0]
    by_vector = store.nearest_motivations(vector, k=1)
    assert by_vector[0].experiment_id == "e0002" and by_vector[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.experiment_id for h in store.nearest_motivations(vector, k=1, exclude=["e0002"])] != ["e0002"]
    assert store.nearest_motivations(vector, k=2, where={"fitness": {"$gte": 0.25}})[0].experiment_id == "e0004"


def test_indexing_again_is_idempotent_and_refreshes_metadata(filled):
    archive, store = filled
    counts = {name: store.count(name) for name in (MOTIVATIONS, ANALYSES, INSIGHTS)}
    assert counts == {MOTIVATIONS: 4, ANALYSES: 4, INSIGHTS: 3}  # i1 has a headline key
    updated = archive.update_experiment("e0001", status="ok", fitness=Fitness(value=0.9))
    assert not store.check_consistency(archive).ok  # metadata out of date
    store.index_experiment(updated)
    store.index_experiments(archive.experiments())
    store.index_insights(archive.insights())
    assert {name: store.count(name) for name in counts} == counts
    assert store.check_consistency(archive).ok
    assert store.nearest_motivations(MOTIVATIONS_TEXT["e0001"], k=1)[0].metadata["fitness"] == 0.9


def test_search_insights_and_combined_search(filled):
    _, store = filled
    (hit,) = store.search_insights("gates that forget old context", k=1)
    assert hit.insight.id == "i1" and hit.insight.metadata == {"tags": ["decay", "gates"]}
    assert hit.insight.experiment_id == "e0003"
    assert [h.insight.id for h in store.search_insights("warmup", k=5, where={"source": "user"})] == ["i2"]
    mixed = store.search("forgetting helps language modelling", k=3)
    assert {h.kind for h in mixed} <= {"insight", "analysis"} and len({h.id for h in mixed}) == 3
    assert mixed[0].kind == "analysis" and mixed[0].experiment_id == "e0003"


def test_consistency_reports_missing_stale_and_duplicated(filled, embedder):
    archive, store = filled
    archive.add_experiment(Experiment(id="e0005", run="r1", motivation="A new idea never indexed."))
    archive.add_insight(Insight(id="i2", title="Warmup", text="Warmup, edited.", source="user"))
    archive.add_insight(Insight(id="i1", title="Decay gates", text="Forgetting through gates stabilises long contexts.",
                                source="analysis", run="r1", experiment_id="e0003"))  # tags dropped
    store.index_insights([Insight(id="gone", title="t", text="deleted from the archive", source="user")])
    report = store.check_consistency(archive)
    assert report.missing == ["motivations:e0005"]
    assert report.stale == ["insights:gone", "insights:i1", "insights:i2"]
    assert report.duplicated == ["insights:i1#headline"]
    assert store.repair(archive) == report
    assert store.check_consistency(archive).ok
    assert [h.insight.text for h in store.search_insights("warmup", k=1)] == ["Warmup, edited."]


def test_rebuild_reproduces_the_same_index(filled):
    archive, store = filled

    def snapshot() -> dict[str, dict[str, str]]:
        return {name: {i: doc for i, doc, _ in store.entries(name)} for name in (MOTIVATIONS, ANALYSES, INSIGHTS)}

    before = snapshot()
    store.rebuild(archive)
    assert snapshot() == before
    assert store.check_consistency(archive).ok


class ShiftedEmbedder:
    """Another vector space (a fixed rotation of MiniLM's), to test switching embedders."""

    name = "test:rotated-minilm"

    def embed(self, texts):
        return np.roll(local_minilm().embed(texts), 1, axis=1)


def test_switching_embedder_requires_a_rebuild(filled, tmp_path):
    archive, _ = filled
    other = VectorStore(tmp_path / "chroma", ShiftedEmbedder())
    with pytest.raises(EmbedderMismatchError, match="rebuild"):
        other.nearest_motivations("anything", k=1)
    other.rebuild(archive)
    assert other.nearest_motivations(MOTIVATIONS_TEXT["e0003"], k=1)[0].experiment_id == "e0003"
    assert other.check_consistency(archive).ok


def test_motivation_novelty(filled):
    _, store = filled
    novelty = MotivationNovelty(store, threshold=0.9)
    repeat = novelty.check(MOTIVATIONS_TEXT["e0003"])
    assert not repeat.novel and repeat.nearest[0].experiment_id == "e0003" and repeat.nearest[0].score > 0.99
    paraphrase = novelty.check("Use a data-dependent scalar decay for each head so the recurrence forgets irrelevant context.")
    assert not paraphrase.novel
    new = novelty.check("Mix tokens with a learned Fourier filter over the whole sequence.")
    assert new.novel and new.nearest[0].score < 0.9
    assert novelty.check(MOTIVATIONS_TEXT["e0003"], exclude=["e0003"]).novel  # re-checking itself after a resume
    with pytest.raises(ValueError, match="threshold"):
        MotivationNovelty(store, threshold=1.5)
