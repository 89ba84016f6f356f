"""When to retry an LLM call and how long to wait: pure functions, so the policy is testable.

Transient failures (rate limits, server errors, timeouts, dropped connections) are retried
with exponential backoff and jitter; a provider's Retry-After is honoured up to the cap.
Client errors (400 bad request, 401, 404, context too long) are not: repeating them only
spends budget.
"""
from __future__ import annotations

import email.utils
import time
from typing import Any

import openai

TRANSIENT_STATUS = frozenset({408, 409, 429})


def is_transient(error: BaseException) -> bool:
    """True for failures that a later identical request may not meet."""
    if isinstance(error, openai.APIConnectionError):  # litellm.Timeout and litellm.APIConnectionError derive from it
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status in TRANSIENT_STATUS or status >= 500)


def retry_after_s(error: BaseException, now: float | None = None) -> float | None:
    """The wait a provider asked for in its Retry-After header (seconds or HTTP date), if any."""
    headers: Any = getattr(error, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(error, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - (time.time() if now is None else now))


def backoff_delay_s(attempt: int, base_s: float, cap_s: float, unit_random: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry).

    Equal jitter: half of the exponential step is fixed, half random, so concurrent
    experiments hitting the same rate limit spread out. A Retry-After longer than that
    wins, but nothing exceeds `cap_s`.
    """
    step = min(cap_s, base_s * 2.0**attempt)
    delay = step / 2.0 + unit_random * step / 2.0
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap_s)
