"""What a model offers, as litellm knows it: its context window, its tokenizer, a JSON mode,
prompt caching. Unknown models (local servers) get safe answers, never an exception."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from agents.llm.litellm_setup import litellm
from pydantic import BaseModel

from agents.llm.config import LLMConfig

# Providers that cache a prompt prefix only where the request marks it; OpenAI, DeepSeek and
# others cache on their own and report cached tokens all the same.
MARKED_CACHE_PROVIDERS = frozenset({"anthropic", "bedrock", "vertex_ai", "vertex_ai_beta"})
CACHE_MARKER = {"type": "ephemeral"}


@dataclass(frozen=True)
class PromptBudget:
    """How many prompt tokens a model may be sent, and where the figure comes from."""

    tokens: int
    window: int
    reserve: int
    source: str  # "litellm", "config" or "unknown model"

    def explain(self) -> str:
        return (f"context window {self.window:,} ({self.source}) less {self.reserve:,} reserved for the reply"
                + (f", capped at {self.tokens:,}" if self.tokens < self.window - self.reserve else ""))


@functools.lru_cache(maxsize=256)
def provider_of(model: str) -> str:
    try:
        return litellm.get_llm_provider(model)[1] or ""
    except Exception:  # noqa: BLE001  an unknown provider prefix: treat as unknown
        return ""


@functools.lru_cache(maxsize=256)
def _model_info(model: str) -> dict[str, Any]:
    try:
        return dict(litellm.get_model_info(model))
    except Exception:  # noqa: BLE001  litellm raises for models missing from its table
        return {}


def prompt_budget(config: LLMConfig, model: str) -> PromptBudget:
    """The model's context window (config override, else litellm's table, else the configured
    default) less room for the reply, capped by `max_prompt_tokens`."""
    info = _model_info(model)
    if model in config.context_windows:
        window, source = config.context_windows[model], "config"
    elif info.get("max_input_tokens"):
        window, source = int(info["max_input_tokens"]), "litellm"
    else:
        window, source = config.unknown_context_window, "unknown model"
    reserve = min(config.max_output_tokens or config.reply_reserve_tokens, window // 2)
    tokens = window - reserve
    if config.max_prompt_tokens is not None:
        tokens = min(tokens, config.max_prompt_tokens)
    return PromptBudget(tokens, window, reserve, source)


def count_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    """litellm's count for this model's tokenizer (tiktoken's for models it does not know)."""
    return int(litellm.token_counter(model=model, messages=messages))


@functools.lru_cache(maxsize=256)
def _json_mode(model: str) -> str:
    provider = provider_of(model)
    try:
        if litellm.supports_response_schema(model=model, custom_llm_provider=provider or None):
            return "json_schema"
    except Exception:  # noqa: BLE001
        pass
    try:
        params = litellm.get_supported_openai_params(model=model, custom_llm_provider=provider or None) or []
    except Exception:  # noqa: BLE001
        params = []
    return "json_object" if "response_format" in params else ""


def json_response_format(model: str, answer: type[BaseModel], mode: str = "auto") -> dict[str, Any] | None:
    """The `response_format` asking this model for JSON: the answer's schema where litellm says
    the model takes one, a plain JSON object where it takes only that, else None (the prompt asks)."""
    found = _json_mode(model) if mode == "auto" else ""
    if found == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": answer.__name__, "schema": answer.model_json_schema(), "strict": False}}
    if found == "json_object":
        return {"type": "json_object"}
    return None


@functools.lru_cache(maxsize=256)
def takes_cache_markers(model: str) -> bool:
    if provider_of(model) not in MARKED_CACHE_PROVIDERS:
        return False
    try:
        return bool(litellm.utils.supports_prompt_caching(model=model))
    except Exception:  # noqa: BLE001
        return False


def with_cache_markers(model: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as sent: the static system message marked as a cacheable prefix where the
    provider needs a marker; unchanged otherwise (the archive records them unmarked)."""
    if not takes_cache_markers(model):
        return messages
    return [{"role": m["role"], "content": [{"type": "text", "text": m["content"], "cache_control": CACHE_MARKER}]}
            if m["role"] == "system" else m for m in messages]
