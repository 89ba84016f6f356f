"""Prompts fitted to a token budget: drop what matters least first, never what must stay.

A role's context comes with a plan of trims, least important first (older insights, then
reference code, then the parent's analysis, ...); the contract and the task are never in a
plan. Trims are applied one at a time until the rendered prompt fits, and what was dropped
is returned so that it is recorded with the call. Pure given `render` and `count`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

from agents.llm.errors import PromptTooLong

Context = TypeVar("Context")
Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class Trim(Generic[Context]):
    label: str                              # what goes, as recorded: e.g. "code of reference e0003 (rwkv)"
    apply: Callable[[Context], Context]     # the context without it


@dataclass(frozen=True)
class FittedPrompt:
    messages: Messages
    tokens: int
    full_tokens: int                  # before any trim
    budget: int
    dropped: tuple[str, ...] = ()

    def as_record(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "full_tokens": self.full_tokens, "budget": self.budget,
                "dropped": list(self.dropped)}


def fit_prompt(context: Context, render: Callable[[Context], Messages], trims: Sequence[Trim[Context]],
               count: Callable[[Messages], int], budget: int, why_budget: str = "") -> FittedPrompt:
    """The prompt for `context`, trimmed in plan order until it has at most `budget` tokens."""
    messages = render(context)
    full = tokens = count(messages)
    dropped: list[str] = []
    for trim in trims:
        if tokens <= budget:
            break
        context = trim.apply(context)
        messages = render(context)
        tokens = count(messages)
        dropped.append(trim.label)
    if tokens > budget:
        raise PromptTooLong(
            f"the prompt needs {tokens:,} tokens even with {len(dropped)} part(s) dropped ({', '.join(dropped) or 'none droppable'}), "
            f"over the budget of {budget:,}{f' ({why_budget})' if why_budget else ''}: set llm.context_windows for the "
            "model if its window is larger, or choose a model with a larger context window")
    return FittedPrompt(messages, tokens, full, budget, tuple(dropped))
