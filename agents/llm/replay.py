"""An LLM client that answers from a recorded run (agents.replay) instead of the network:
no API key, no request, no spend. Everything else (structured parsing, retries, the call
budget, recording each attempt in the new archive) is the ordinary client's, so the new run
goes through the same steps the original did."""
from __future__ import annotations

from typing import Any

from agents.llm.bandit import Choice
from agents.llm.client import CallOptions, LLMClient, LLMReply
from agents.llm.config import LLMConfig
from agents.replay import DIVERGENCE, ReplaySource, first_difference, only_figures_differ, prompt_sha256
from knowledge.archive import Archive
from knowledge.records import Event, LLMCall


class ReplayedFailure(Exception):
    """A failed attempt of the original, failing again; `status_code` makes the client treat it
    as transient exactly when the original retried it."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.status_code = 503 if transient else 400


class MissingRecordedAnswer(Exception):
    """The new run asks more than the original did (a check or a prompt now differs)."""


class ReplayClient(LLMClient):
    def __init__(self, config: LLMConfig, archive: Archive, run: str, source: ReplaySource, **kwargs: Any) -> None:
        keyless = config.model_copy(update={"api_key_env": None, "api_base": None})
        super().__init__(keyless, archive.record_llm_call, run, **kwargs)
        self._archive, self._source = archive, source

    def choose(self, role: str, experiment_id: str | None = None) -> Choice:
        """The model the original used for this attempt, so prompts are fitted to the same budget."""
        recorded = self._source.answer(experiment_id, role, self._served(experiment_id, role))
        if recorded is None:
            return super().choose(role, experiment_id)  # the call itself will say that the record ends here
        return Choice(recorded.model, "replayed")

    def _send_unless_stopped(self, role: str, model: str, messages: list[dict[str, Any]],
                             experiment_id: str | None, options: CallOptions) -> LLMReply:
        index = self._served(experiment_id, role)
        recorded = self._source.answer(experiment_id, role, index)
        where = f"{role} attempt #{index + 1} of {experiment_id or 'the run'}"
        if recorded is None:
            why = (f"no recorded answer for {where}: the original asked {self._source.answers(experiment_id, role)} "
                   f"time(s); this run asks more")
            self._diverged(experiment_id, why, cause="missing answer", role=role, attempt=index + 1)
            raise MissingRecordedAnswer(why)
        if prompt_sha256(recorded.prompt) != prompt_sha256(messages):
            figures = only_figures_differ(recorded.prompt, messages)
            why = (f"the prompt of {where} differs from the recorded one{' only in figures' if figures else ''}: "
                   f"{first_difference(recorded.prompt, messages)}")
            self._diverged(experiment_id, why, cause="prompt figures" if figures else "prompt", role=role,
                           attempt=index + 1)
        if recorded.error:
            raise ReplayedFailure(f"recorded: {recorded.error}", self._source.retried(experiment_id, role, index))
        with self._lock:
            self._spent_usd += recorded.cost_usd  # the budget stops the replay where it stopped the original
        return LLMReply(recorded.response, recorded.prompt_tokens, recorded.completion_tokens, cost_usd=0.0,
                        latency_s=0.0, model=recorded.model, finish_reason=recorded.meta.get("finish_reason", "stop"),
                        cached_tokens=recorded.cached_tokens)

    def _delay(self, attempt: int, error: BaseException) -> float:
        return 0.0  # nobody to wait for

    def _served(self, experiment_id: str | None, role: str) -> int:
        """Attempts of `role` in this experiment the new archive holds: the position in the record.
        Read from the archive, so a resumed replay continues where it stopped."""
        calls: list[LLMCall] = self._archive.llm_calls(experiment_id=experiment_id) if experiment_id \
            else [c for c in self._archive.llm_calls(run=self._run) if c.experiment_id is None]
        return sum(1 for c in calls if c.role == role and not c.error.startswith("abandoned:"))

    def _diverged(self, experiment_id: str | None, why: str, **data: Any) -> None:
        self._archive.log_event(Event(run=self._run, kind=DIVERGENCE, message=why, experiment_id=experiment_id,
                                      data=data))

