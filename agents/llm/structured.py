"""Structured answers: find the JSON in a model's reply and validate it against a typed model.

A reply may be plain JSON, a fenced ```json block, or prose around one object; the first
candidate object that validates wins. The request asks for JSON through the provider's JSON
mode where litellm offers one (`CallOptions.response_format`). A bad answer earns exactly one
corrective retry that shows the model its answer and the validation error (or that it was cut
off at the token limit); a second bad answer raises `StructuredOutputError`, which callers
record as a failed step.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator, TypeVar

from pydantic import BaseModel, ValidationError

from agents.llm.client import CallOptions, LLMClient, LLMReply
from agents.llm.errors import StructuredOutputError
from agents.prompting import Prompts

Model = TypeVar("Model", bound=BaseModel)

FENCED = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
CORRECTION_TEMPLATE = "structured_retry.j2"
MAX_ERRORS_SHOWN = 8

_decoder = json.JSONDecoder(strict=False)  # tolerate raw newlines/tabs inside strings (code in JSON)


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """JSON objects in `text`, most likely intended first: the whole reply, fenced blocks,
    then each balanced {...} found scanning left to right."""
    stripped = text.strip()
    whole = _decode_at(stripped, 0)
    if whole is not None and whole[1] == len(stripped):
        yield whole[0]
    for block in FENCED.findall(text):
        found = _decode_at(block.strip(), 0)
        if found is not None:
            yield found[0]
    index = text.find("{")
    while index != -1:
        found = _decode_at(text, index)
        if found is None:
            index = text.find("{", index + 1)
        else:
            yield found[0]
            index = text.find("{", found[1])


def _decode_at(text: str, index: int) -> tuple[dict[str, Any], int] | None:
    try:
        value, end = _decoder.raw_decode(text, index)
    except json.JSONDecodeError:
        return None
    return (value, end) if isinstance(value, dict) else None


def parse_answer(text: str, model_cls: type[Model]) -> Model:
    """The first JSON object in `text` that validates as `model_cls`; ValueError saying why not."""
    first_error: ValidationError | None = None
    for candidate in json_objects(text):
        try:
            return model_cls.model_validate(candidate)
        except ValidationError as error:
            first_error = first_error or error
    if first_error is not None:
        raise ValueError(describe_validation_error(first_error))
    raise ValueError("the answer contains no JSON object")


def describe_validation_error(error: ValidationError) -> str:
    """Short, field-by-field, written for the model to act on."""
    lines = []
    for detail in error.errors()[:MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in detail["loc"]) or "(top level)"
        lines.append(f"- {where}: {detail['msg']}")
    hidden = error.error_count() - MAX_ERRORS_SHOWN
    if hidden > 0:
        lines.append(f"- ... and {hidden} more")
    return "the JSON does not match the required fields:\n" + "\n".join(lines)


def ask_structured(
    client: LLMClient,
    role: str,
    messages: list[dict[str, Any]],
    model_cls: type[Model],
    experiment_id: str | None = None,
    *,
    prompts: Prompts | None = None,
    options: CallOptions | None = None,
) -> Model:
    """Ask, parse, and on a bad answer ask once more with the error shown."""
    reply = client.complete(role, messages, experiment_id, options)
    try:
        return parse_answer(reply.text, model_cls)
    except ValueError as error:
        first_problem = _with_cut_off(reply, str(error))
    correction = (prompts or Prompts()).text(
        CORRECTION_TEMPLATE,
        error=first_problem,
        schema=json.dumps(model_cls.model_json_schema(), indent=1),
    )
    retry_messages = [
        *messages,
        {"role": "assistant", "content": reply.text},
        {"role": "user", "content": correction},
    ]
    second = client.complete(role, retry_messages, experiment_id, options)
    try:
        return parse_answer(second.text, model_cls)
    except ValueError as error:
        raise StructuredOutputError(
            f"{role} gave no valid {model_cls.__name__} after a corrective retry: {_with_cut_off(second, str(error))}"
        ) from error


def _with_cut_off(reply: LLMReply, problem: str) -> str:
    if not reply.truncated:
        return problem
    return (f"the answer was cut off at the output token limit after {reply.completion_tokens} tokens, so {problem}; "
            "answer more briefly")
