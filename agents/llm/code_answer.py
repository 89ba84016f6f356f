"""Asking for code in plain text: ask, parse (agents.llm.code_blocks), apply edits to the base
file (agents.llm.edits), and on an unusable answer ask once more, quoting exactly what went
wrong; a second unusable answer raises `StructuredOutputError` (a failed step)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.llm.client import CallOptions, LLMClient, LLMReply
from agents.llm.code_blocks import CodeFormatError, TruncatedAnswer, parse_code_answer
from agents.llm.edits import EditError, apply_edits
from agents.llm.errors import StructuredOutputError
from agents.prompting import Prompts

CORRECTION_TEMPLATE = "code_retry.j2"


@dataclass(frozen=True)
class WrittenCode:
    code: str
    mode: str                    # "full" or "edit"
    notes: tuple[str, ...] = ()  # near-misses tolerated (prose, a re-indented block, a corrective retry)


def code_from_reply(reply: LLMReply, base_code: str) -> WrittenCode:
    """The candidate file an answer gives; CodeFormatError or EditError, written for the model, if none."""
    answer = parse_code_answer(reply.text, truncated=reply.truncated)
    if answer.mode == "full":
        return WrittenCode(answer.code, "full", answer.notes)
    if not base_code.strip():
        raise CodeFormatError("SEARCH/REPLACE blocks need a file to edit, and there is none here: send the whole "
                              "file in one ```python block")
    applied = apply_edits(base_code, answer.edits)
    return WrittenCode(applied.code, "edit", answer.notes + applied.notes)


def ask_code(client: LLMClient, role: str, messages: list[dict[str, Any]], base_code: str,
             experiment_id: str | None = None, *, prompts: Prompts | None = None,
             options: CallOptions | None = None) -> WrittenCode:
    """The file the model writes (whole, or as edits of `base_code`), with one corrective retry."""
    reply = client.complete(role, messages, experiment_id, options)
    try:
        return code_from_reply(reply, base_code)
    except (CodeFormatError, EditError) as error:
        problem, truncated, edits_failed = _problem(error), isinstance(error, TruncatedAnswer), isinstance(error, EditError)
    correction = (prompts or Prompts()).text(CORRECTION_TEMPLATE, problem=problem, truncated=truncated,
                                             has_base=bool(base_code.strip()), edits_failed=edits_failed)
    retry_messages = [*messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": correction}]
    second = client.complete(role, retry_messages, experiment_id, options)
    try:
        written = code_from_reply(second, base_code)
    except (CodeFormatError, EditError) as error:
        raise StructuredOutputError(f"{role} gave no usable code after a corrective retry: {_problem(error)} "
                                    f"(first answer: {problem})") from error
    return WrittenCode(written.code, written.mode, (f"corrective retry after: {problem}", *written.notes))


def _problem(error: Exception) -> str:
    return str(error) if isinstance(error, CodeFormatError) else f"edits did not apply:\n{error}"
