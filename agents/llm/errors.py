"""The errors every layer may catch, kept free of litellm so that catching them costs no import."""
from __future__ import annotations


class BudgetExhausted(Exception):
    """The run's LLM budget is spent: no further call is started. Not a failure of the
    experiment in flight; resuming with a larger budget continues it."""


class LLMCallFailed(Exception):
    """A call failed for good (a non-transient error, or transient ones past max_retries).
    Callers record it as a failed step with this message as the reason."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class PromptTooLong(LLMCallFailed):
    """The prompt exceeds the model's budget even with everything droppable dropped; never sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, attempts=0)


class StructuredOutputError(Exception):
    """The model did not produce a usable answer (JSON or code), even after one corrective retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
