"""How archlab talks to language models, as configuration, and the errors every layer may catch.

Kept apart from `agents.llm` so that reading a config or catching `BudgetExhausted` does not
import litellm (seconds of start-up for every command).
"""
from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLES = frozenset({"researcher", "coder", "analyst", "judge"})
DEFAULT = "default"
LOCAL_SERVER_API_KEY = "not-needed"  # litellm insists on a key; local servers ignore it


class ModelPrice(BaseModel):
    """Dollars per million tokens, for local or unknown models (or to override litellm's table)."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)   # dollars per million prompt tokens
    output_per_mtok: float = Field(ge=0)  # dollars per million completion tokens

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


class LLMConfig(BaseModel):
    """How archlab talks to language models. Secrets are never stored here: only the
    NAME of the environment variable that holds the API key."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, str] = Field(description='role -> litellm model string; "default" is required')
    api_base: str | None = None       # an OpenAI-compatible server (vLLM, Ollama, llama.cpp), e.g. http://localhost:8000/v1
    api_key_env: str | None = None    # NAME of the variable holding the key (unset: the provider's own, e.g. OPENAI_API_KEY)
    timeout_s: float = Field(default=180.0, gt=0)      # one call's time limit
    max_retries: int = Field(default=4, ge=0)          # retries of a transient failure (rate limit, timeout)
    backoff_base_s: float = Field(default=2.0, ge=0)   # first retry's wait; doubles each retry
    backoff_cap_s: float = Field(default=60.0, ge=0)   # longest wait between retries
    budget_usd: float = Field(default=20.0, gt=0)      # the run stops starting calls past this spend
    max_calls: int = Field(default=2000, gt=0)         # the run stops starting calls past this many
    prices: dict[str, ModelPrice] = Field(default_factory=dict, description="litellm model string -> price")
    temperatures: dict[str, float] = Field(default_factory=lambda: {DEFAULT: 0.7})  # role -> temperature in [0, 2]
    max_output_tokens: int | None = Field(default=None, gt=0)  # cap on a reply's length (unset: the model's)

    @field_validator("models", "temperatures")
    @classmethod
    def _known_roles(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - ROLES - {DEFAULT}
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; use {sorted(ROLES)} or {DEFAULT!r}")
        return value

    @field_validator("models")
    @classmethod
    def _has_default_model(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get(DEFAULT):
            raise ValueError('models needs a "default" entry, e.g. models = {default = "openai/gpt-4o-mini"}')
        return value

    @field_validator("temperatures")
    @classmethod
    def _temperature_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {role: t for role, t in value.items() if not 0.0 <= t <= 2.0}
        if bad:
            raise ValueError(f"temperatures must lie in [0, 2]; got {bad}")
        return {DEFAULT: 0.7, **value}

    @model_validator(mode="after")
    def _backoff_order(self) -> "LLMConfig":
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        return self

    def model_for(self, role: str) -> str:
        return self.models.get(role, self.models[DEFAULT])

    def temperature_for(self, role: str) -> float:
        return self.temperatures.get(role, self.temperatures[DEFAULT])

    def api_key(self) -> str | None:
        """The key for litellm: from the named variable; a placeholder for a keyless local
        server; None lets litellm read the provider's own variable (OPENAI_API_KEY, ...)."""
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ValueError(f"environment variable {self.api_key_env} (llm.api_key_env) is not set")
            return key
        return LOCAL_SERVER_API_KEY if self.api_base else None


class BudgetExhausted(Exception):
    """The run's LLM budget is spent: no further call is started. Not a failure of the
    experiment in flight; resuming with a larger budget continues it."""


class LLMCallFailed(Exception):
    """A call failed for good (a non-transient error, or transient ones past max_retries).
    Callers record it as a failed step with this message as the reason."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class StructuredOutputError(Exception):
    """The model did not produce a valid answer, even after one corrective retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
