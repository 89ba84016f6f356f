"""Structured answers: JSON extraction, validation, the one corrective retry, over real HTTP."""
from __future__ import annotations

import json

import pytest

from agents.answers import Analysis, Proposal
from agents.llm.capabilities import json_response_format
from agents.llm.client import CallOptions, LLMClient
from agents.llm.config import LLMConfig
from agents.llm.errors import StructuredOutputError
from agents.llm.structured import ask_structured, json_objects, parse_answer
from knowledge.records import LLMCall
from tests.support.fake_llm_server import Answer, FakeLLMServer

ASK = [{"role": "system", "content": "archlab role: researcher"}, {"role": "user", "content": "propose"}]
GOOD = {"name": "Gated Decay", "motivation": "decay forgets stale keys", "plan": "1. project q,k,v ..."}


def make_client(server: FakeLLMServer, records: list[LLMCall]) -> LLMClient:
    config = LLMConfig(models={"default": "openai/local"}, api_base=server.base_url, timeout_s=5, max_retries=0)
    return LLMClient(config, records.append, run="r")


def test_plain_json_answer(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    fake_llm.enqueue(Answer(json.dumps(GOOD)))

    proposal = ask_structured(make_client(fake_llm, records), "researcher", ASK, Proposal, "e0001")

    assert proposal == Proposal(name="gated-decay", motivation=GOOD["motivation"], plan=GOOD["plan"])
    assert len(records) == 1 and records[0].experiment_id == "e0001"


def test_malformed_then_valid_succeeds_after_one_corrective_retry(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    broken = '{"name": "x", "motivation": "m"}'  # no plan
    fake_llm.enqueue(Answer(broken), Answer(json.dumps(GOOD)))

    proposal = ask_structured(make_client(fake_llm, records), "researcher", ASK, Proposal)

    assert proposal.name == "gated-decay"
    first, second = fake_llm.requests
    assert first.messages == ASK
    assert second.messages[: len(ASK)] == ASK
    assert second.messages[len(ASK)] == {"role": "assistant", "content": broken}
    correction = second.messages[-1]
    assert correction["role"] == "user"
    assert "plan: Field required" in correction["content"]
    assert '"required"' in correction["content"]  # the schema is shown
    assert len(records) == 2


def test_two_malformed_answers_raise(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    fake_llm.enqueue(Answer("I would rather not."), Answer('{"name": "x"}'))

    with pytest.raises(StructuredOutputError, match="researcher gave no valid Proposal") as failure:
        ask_structured(make_client(fake_llm, records), "researcher", ASK, Proposal)

    assert "motivation: Field required" in failure.value.reason
    assert "contains no JSON object" in fake_llm.requests[1].messages[-1]["content"]
    assert len(fake_llm.requests) == 2 and len(records) == 2


def test_chatty_answer_with_extra_fields_is_parsed(fake_llm: FakeLLMServer) -> None:
    chatty = (
        "Sure! Here is my proposal, {as requested}:\n\n"
        + json.dumps({**GOOD, "confidence": "high", "extra": {"nested": [1, 2]}})
        + "\n\nLet me know if you want changes."
    )
    fake_llm.enqueue(Answer(chatty))

    proposal = ask_structured(make_client(fake_llm, []), "researcher", ASK, Proposal)

    assert proposal.plan == GOOD["plan"]
    assert len(fake_llm.requests) == 1


def test_fenced_json_with_raw_newlines_in_strings() -> None:
    text = 'Analysis below.\n```json\n{"summary": "line one\nline two", "lessons": "one lesson"}\n```\n'
    analysis = parse_answer(text, Analysis)
    assert analysis.summary == "line one\nline two"
    assert analysis.lessons == ["one lesson"]


def test_the_first_object_that_validates_wins() -> None:
    text = 'For example {"name": "template"} would be wrong; my answer: ' + json.dumps(GOOD)
    assert parse_answer(text, Proposal).motivation == GOOD["motivation"]


def test_braces_inside_strings_do_not_confuse_extraction() -> None:
    code = "def f(x):\n    return {'a': x}['a']  # } {"
    text = "Here: " + json.dumps({"mode": "full", "code": code}) + " done"
    assert list(json_objects(text)) == [{"mode": "full", "code": code}]


def test_non_object_json_is_not_an_answer() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        parse_answer('["name", "motivation"]', Proposal)


def test_json_is_requested_through_the_providers_json_mode_where_litellm_offers_it(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    fake_llm.enqueue(*[Answer(json.dumps(GOOD))] * 3)
    client = make_client(fake_llm, records)
    for model in ("openai/local", "openai/gpt-4o-mini"):
        options = CallOptions(model, json_response_format(model, Proposal))
        ask_structured(client, "researcher", ASK, Proposal, options=options)
    off = json_response_format("openai/gpt-4o-mini", Proposal, mode="off")
    ask_structured(client, "researcher", ASK, Proposal, options=CallOptions("openai/gpt-4o-mini", off))

    local, known, without = (r.body.get("response_format") for r in fake_llm.requests)
    assert local == {"type": "json_object"}  # an OpenAI-compatible server: JSON mode, no schema
    assert known["type"] == "json_schema" and known["json_schema"]["name"] == "Proposal"
    assert set(known["json_schema"]["schema"]["required"]) == {"name", "motivation", "plan"}
    assert without is None
    assert [r.meta.get("json_mode") for r in records] == ["json_object", "json_schema", None]


def test_a_json_answer_cut_off_at_the_token_limit_is_asked_again_briefly(fake_llm: FakeLLMServer) -> None:
    cut = Answer('{"name": "gated", "motivation": "decay forgets stale', completion_tokens=4096, finish_reason="length")
    fake_llm.enqueue(cut, Answer(json.dumps(GOOD)))

    proposal = ask_structured(make_client(fake_llm, []), "researcher", ASK, Proposal)

    assert proposal.name == "gated-decay"
    correction = fake_llm.requests[1].messages[-1]["content"]
    assert "the answer was cut off at the output token limit after 4096 tokens, so the answer contains no JSON " \
           "object; answer more briefly" in correction
