"""The one LLM client of archlab: any litellm provider or local server, with retries,
token and dollar accounting, a hard budget, and every attempt recorded.

Model strings are litellm's: "openai/<name>" with `api_base` for OpenAI-compatible local
servers (vLLM, Ollama, llama.cpp), "anthropic/<name>", "gpt-4o-mini", ... for providers.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from agents.llm.bandit import Choice, ModelChooser
from agents.llm.capabilities import with_cache_markers
from agents.llm.config import ROLES, LLMConfig
from agents.llm.errors import BudgetExhausted, LLMCallFailed
from agents.llm.litellm_setup import litellm
from agents.llm.retry import backoff_delay_s, is_transient, retry_after_s
from agents.stopping import StopRequested
from knowledge.records import LLMCall

ERROR_TEXT_LIMIT = 2000
STOP_POLL_S = 0.1  # how soon a stop is noticed while a reply is awaited
ABANDONED = "abandoned: the run stopped before the reply came; the call is made again on resume"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LLMReply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    model: str
    finish_reason: str = "stop"  # "length": the reply was cut off at the output token limit
    cached_tokens: int = 0       # prompt tokens served from the provider's cache (counted in prompt_tokens)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True)
class CallOptions:
    """How to make one call: the model chosen for it, a JSON mode, and what to record with it."""

    model: str | None = None                           # None: the role's most weighted model
    response_format: dict[str, Any] | None = None      # litellm's response_format (a provider JSON mode)
    meta: dict[str, Any] = field(default_factory=dict)  # recorded with the call (model choice, prompt trims)


@dataclass(frozen=True)
class Spend:
    spent_usd: float
    calls: int


class LLMClient:
    """Thread-safe: several experiments in flight share one client and one budget.

    The budget is checked and a call slot reserved atomically before each attempt, so
    `max_calls` is never exceeded; dollars are known only after an answer, so the spend can
    overshoot `budget_usd` by at most the calls already in flight when it was reached.
    """

    def __init__(
        self,
        config: LLMConfig,
        record: Callable[[LLMCall], None],
        run: str,
        *,
        spent_usd: float = 0.0,
        calls: int = 0,
        stop: threading.Event | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.models = ModelChooser(config, seed)  # which of a role's models each experiment uses
        self._stop = stop or threading.Event()  # the run's stop: a backoff wait ends at once on it
        self._record = record
        self._run = run
        self._api_key = config.api_key()
        self._lock = threading.Lock()
        self._spent_usd = spent_usd
        self._calls = calls
        self._rng = random.Random()  # jitter only; guarded by _lock
        self._unpriced_models: set[str] = set()

    @property
    def spend(self) -> Spend:
        with self._lock:
            return Spend(self._spent_usd, self._calls)

    def choose(self, role: str, experiment_id: str | None = None) -> Choice:
        """The model `role` uses in this experiment (the same one on every call of it)."""
        return self.models.choose(role, experiment_id)

    def complete(self, role: str, messages: list[dict[str, Any]], experiment_id: str | None = None,
                 options: CallOptions | None = None) -> LLMReply:
        """One chat completion for `role`, retried on transient failures; every attempt is recorded."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {sorted(ROLES)}")
        _check_messages(messages)
        options = options or CallOptions()
        model = options.model or self.config.model_for(role)
        attempt = 0
        while True:
            self._reserve_call()
            started = time.monotonic()
            try:
                reply = self._send_unless_stopped(role, model, messages, experiment_id, options)
            except StopRequested:
                self._record_attempt(role, model, messages, experiment_id, options,
                                     latency=time.monotonic() - started, error=ABANDONED)
                raise
            except Exception as error:  # noqa: BLE001  every failure is recorded, then classified
                message = f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT]
                self._record_attempt(role, model, messages, experiment_id, options,
                                     latency=time.monotonic() - started, error=message)
                if not is_transient(error):
                    raise LLMCallFailed(message, attempt + 1) from error
                if attempt == self.config.max_retries:
                    raise LLMCallFailed(f"gave up after {attempt + 1} attempts; last: {message}", attempt + 1) from error
                if self._stop.wait(self._delay(attempt, error)):
                    raise StopRequested("the run is stopping; the call is retried on resume") from error
                attempt += 1
                continue
            self._record_attempt(role, model, messages, experiment_id, options, reply=reply)
            return reply

    def _reserve_call(self) -> None:
        with self._lock:
            if self._spent_usd >= self.config.budget_usd:
                raise BudgetExhausted(f"LLM budget spent: ${self._spent_usd:.4f} of ${self.config.budget_usd:.2f}")
            if self._calls >= self.config.max_calls:
                raise BudgetExhausted(f"LLM call limit reached: {self._calls} of {self.config.max_calls} calls")
            self._calls += 1

    def _send_unless_stopped(self, role: str, model: str, messages: list[dict[str, Any]],
                             experiment_id: str | None, options: CallOptions) -> LLMReply:
        """The request in a helper thread, so a stop does not wait out a slow reply (up to `timeout_s`).

        An abandoned request runs on to its end in the background, unrecorded; the provider may
        still bill it, and its cost is not counted (the run is stopping)."""
        outcome: Future[LLMReply] = Future()

        def send() -> None:
            try:
                outcome.set_result(self._send(role, model, messages, options))
            except BaseException as error:  # noqa: BLE001  handed to the caller as is
                outcome.set_exception(error)

        threading.Thread(target=send, daemon=True, name=f"llm-{role}").start()
        while not wait([outcome], timeout=STOP_POLL_S).done:
            if self._stop.is_set():
                raise StopRequested("the run is stopping; the call is made again on resume")
        return outcome.result()  # a failed request raises here, in the caller's thread

    def _send(self, role: str, model: str, messages: list[dict[str, Any]], options: CallOptions) -> LLMReply:
        started = time.monotonic()
        extra = {"response_format": options.response_format} if options.response_format else {}
        response = litellm.completion(
            model=model,
            messages=with_cache_markers(model, messages),  # the static prefix marked where the provider needs it
            api_base=self.config.api_base,
            api_key=self._api_key,
            timeout=self.config.timeout_s,
            max_retries=0,  # retries are ours: each attempt must be counted and recorded
            temperature=self.config.temperature_for(role),
            max_tokens=self.config.max_output_tokens,
            drop_params=True,  # e.g. reasoning models that refuse `temperature`
            **extra,
        )
        latency = time.monotonic() - started
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cached_tokens = cached_prompt_tokens(usage)
        choice = response.choices[0]
        text = choice.message.content or ""
        cost = self._cost_usd(model, response, prompt_tokens, completion_tokens, cached_tokens)
        with self._lock:
            self._spent_usd += cost
        return LLMReply(text, prompt_tokens, completion_tokens, cost, latency, model,
                        finish_reason=str(getattr(choice, "finish_reason", None) or "stop"), cached_tokens=cached_tokens)

    def _cost_usd(self, model: str, response: Any, prompt_tokens: int, completion_tokens: int,
                  cached_tokens: int) -> float:
        """A configured price wins; then litellm's table (cache reads at its cached price); unknown
        models cost 0 (warned once)."""
        price = self.config.prices.get(model)
        if price is not None:
            return price.cost_usd(prompt_tokens, completion_tokens, cached_tokens)
        try:
            return float(litellm.completion_cost(completion_response=response) or 0.0)
        except Exception:  # noqa: BLE001  litellm raises several kinds for models it cannot price
            with self._lock:
                first = model not in self._unpriced_models
                self._unpriced_models.add(model)
            if first:
                log.warning("no price known for %s: counted as $0; set llm.prices to bound spend in dollars", model)
            return 0.0

    def _delay(self, attempt: int, error: BaseException) -> float:
        with self._lock:
            unit = self._rng.random()
        return backoff_delay_s(attempt, self.config.backoff_base_s, self.config.backoff_cap_s, unit, retry_after_s(error))

    def _record_attempt(
        self,
        role: str,
        model: str,
        messages: list[dict[str, Any]],
        experiment_id: str | None,
        options: CallOptions,
        *,
        reply: LLMReply | None = None,
        latency: float = 0.0,
        error: str = "",
    ) -> None:
        self._record(
            LLMCall(
                run=self._run,
                experiment_id=experiment_id,
                role=role,
                model=model,
                prompt=[dict(m) for m in messages],
                response=reply.text if reply else "",
                prompt_tokens=reply.prompt_tokens if reply else 0,
                completion_tokens=reply.completion_tokens if reply else 0,
                cost_usd=reply.cost_usd if reply else 0.0,
                latency_s=reply.latency_s if reply else latency,
                error=error,
                created_at=time.time(),
                cached_tokens=reply.cached_tokens if reply else 0,
                meta={**options.meta, **({"finish_reason": reply.finish_reason} if reply else {}),
                      **({"json_mode": options.response_format["type"]} if options.response_format else {})},
            )
        )


def cached_prompt_tokens(usage: Any) -> int:
    """Prompt tokens read from the provider's cache, as litellm reports them (OpenAI's
    prompt_tokens_details.cached_tokens, or Anthropic's cache_read_input_tokens)."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if not cached:
        cached = getattr(usage, "cache_read_input_tokens", None)
    return int(cached or 0)


def _check_messages(messages: list[dict[str, Any]]) -> None:
    if not messages:
        raise ValueError("messages is empty: pass at least one {'role': 'user', 'content': ...}")
    for index, message in enumerate(messages):
        if message.get("role") not in {"system", "user", "assistant"} or not isinstance(message.get("content"), str):
            raise ValueError(
                f"messages[{index}] must be {{'role': 'system'|'user'|'assistant', 'content': str}}; got {message!r:.200}"
            )
