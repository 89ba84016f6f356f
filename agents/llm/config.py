"""How archlab talks to language models, as configuration.

Kept free of litellm so that reading a config does not import it (seconds of start-up for
every command).
"""
from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLES = frozenset({"researcher", "coder", "analyst", "judge"})
DEFAULT = "default"
LOCAL_SERVER_API_KEY = "not-needed"  # litellm insists on a key; local servers ignore it


class ModelPrice(BaseModel):
    """Dollars per million tokens, for local or unknown models (or to override litellm's table)."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)   # dollars per million prompt tokens
    output_per_mtok: float = Field(ge=0)  # dollars per million completion tokens
    cached_input_per_mtok: float | None = Field(default=None, ge=0)  # per million prompt tokens read from the provider's cache (unset: the input price)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, prompt_tokens)
        cached_price = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return ((prompt_tokens - cached) * self.input_per_mtok + cached * cached_price
                + completion_tokens * self.output_per_mtok) / 1e6


class BanditConfig(BaseModel):
    """How a role with several models (`model_weights`) chooses among them (agents.llm.bandit)."""

    model_config = ConfigDict(extra="forbid")

    adapt: bool = True                                # false: choose by the configured weights only
    warmup: int = Field(default=2, ge=0)              # outcomes each model needs before its record counts
    exploration: float = Field(default=0.6, ge=0)     # bonus for rarely tried models (UCB), in units of the best gain per dollar
    temperature: float = Field(default=0.2, gt=0)     # softmax temperature over the scores: lower is greedier
    prior_outcomes: float = Field(default=2.0, ge=0)  # pseudo-outcomes at the pooled rate each model's record starts from
    cost_floor_usd: float = Field(default=1e-4, gt=0)  # least cost counted per outcome, so free local models compare


class LLMConfig(BaseModel):
    """How archlab talks to language models. Secrets are never stored here: only the
    NAME of the environment variable that holds the API key."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, str] = Field(description='role -> litellm model string; "default" is required')
    model_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="role (or \"default\") -> {litellm model string: weight}: several models for a role, the "
                    "choice adapting to each model's fitness gain per dollar; overrides `models` for that role")
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
    context_windows: dict[str, int] = Field(
        default_factory=dict, description="litellm model string -> context window in tokens (overrides litellm's table)")
    unknown_context_window: int = Field(default=32768, gt=0)  # context window of a model litellm does not know (local servers)
    reply_reserve_tokens: int = Field(default=4096, gt=0)     # tokens kept free for the reply when max_output_tokens is unset
    max_prompt_tokens: int | None = Field(default=None, gt=0)  # cap on every prompt, below the window (unset: no cap)
    json_mode: Literal["auto", "off"] = "auto"  # researcher, analyst, judge: ask for JSON through the provider's JSON mode where litellm offers it
    bandit: BanditConfig = Field(default_factory=BanditConfig)  # the [llm.bandit] table

    @field_validator("models", "temperatures", "model_weights")
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

    @field_validator("model_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for role, weights in value.items():
            if not weights:
                raise ValueError(f"model_weights.{role} is empty: list at least one model, e.g. {{\"openai/gpt-4o-mini\" = 1}}")
            bad = {model: weight for model, weight in weights.items() if not weight > 0}
            if bad:
                raise ValueError(f"model_weights.{role}: weights must be > 0; got {bad}")
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

    def models_for(self, role: str) -> dict[str, float]:
        """The role's models with their weights: its own entry first, then the default's."""
        for key in (role, DEFAULT):
            if key in self.model_weights:
                return dict(self.model_weights[key])
            if key in self.models:
                return {self.models[key]: 1.0}
        raise AssertionError("models has a default entry")  # guaranteed by _has_default_model

    def model_for(self, role: str) -> str:
        """The role's most weighted model (the first listed among equals)."""
        weights = self.models_for(role)
        return max(weights, key=weights.__getitem__)

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
