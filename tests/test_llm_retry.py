"""The retry policy as pure functions: what is transient, how long to wait."""
from __future__ import annotations

import email.utils

import httpx
import litellm
import pytest

from agents.llm.retry import backoff_delay_s, is_transient, retry_after_s


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    lows = [backoff_delay_s(n, base_s=1.0, cap_s=30.0, unit_random=0.0) for n in range(7)]
    highs = [backoff_delay_s(n, base_s=1.0, cap_s=30.0, unit_random=1.0) for n in range(7)]
    assert lows == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert highs == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_retry_after_wins_when_longer_but_never_beyond_the_cap() -> None:
    assert backoff_delay_s(0, 1.0, 60.0, 0.0, retry_after=12.0) == 12.0
    assert backoff_delay_s(3, 1.0, 60.0, 1.0, retry_after=0.5) == 8.0
    assert backoff_delay_s(0, 1.0, 60.0, 0.0, retry_after=3600.0) == 60.0


def _rate_limit(headers: dict[str, str]) -> litellm.RateLimitError:
    response = httpx.Response(429, headers=headers, request=httpx.Request("POST", "http://x"))
    return litellm.RateLimitError("slow down", llm_provider="openai", model="m", response=response)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_s(_rate_limit({"Retry-After": "2.5"})) == 2.5
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_s(_rate_limit({"Retry-After": date}), now=1_000_000.0) == pytest.approx(30.0)
    assert retry_after_s(_rate_limit({})) is None
    assert retry_after_s(_rate_limit({"Retry-After": "soon"})) is None


def test_transient_versus_permanent_errors() -> None:
    request = httpx.Request("POST", "http://x")
    assert is_transient(_rate_limit({}))
    assert is_transient(litellm.Timeout("t", model="m", llm_provider="openai"))
    assert is_transient(litellm.APIConnectionError("refused", llm_provider="openai", model="m"))
    assert is_transient(litellm.InternalServerError("boom", llm_provider="openai", model="m"))
    assert is_transient(litellm.ServiceUnavailableError("busy", llm_provider="openai", model="m"))
    bad = litellm.BadRequestError("bad", model="m", llm_provider="openai", response=httpx.Response(400, request=request))
    assert not is_transient(bad)
    assert not is_transient(litellm.AuthenticationError("no key", llm_provider="openai", model="m"))
    assert not is_transient(ValueError("a bug"))
