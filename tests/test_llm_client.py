"""LLMClient over real HTTP (litellm -> a local OpenAI-compatible server): retries,
timeouts, accounting, the hard budget and the recording of every attempt."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import litellm
import pytest
from pydantic import ValidationError

from agents.llm.capabilities import with_cache_markers
from agents.llm.client import LLMClient
from agents.llm.config import LLMConfig, ModelPrice
from agents.llm.errors import BudgetExhausted, LLMCallFailed
from agents.llm.retry import retry_after_s
from agents.stopping import StopRequested
from knowledge.records import LLMCall
from tests.support.fake_llm_server import Answer, FakeLLMServer, HttpError, Stall

LOCAL_MODEL = "openai/local-test-model"
HELLO = [{"role": "user", "content": "hello"}]


def make_client(server_url: str, records: list[LLMCall], **overrides) -> LLMClient:
    settings = dict(
        models={"default": LOCAL_MODEL},
        api_base=server_url,
        timeout_s=5.0,
        max_retries=2,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
    )
    settings.update(overrides)
    return LLMClient(LLMConfig(**settings), records.append, run="test-run")


def stop_while_calling(client: LLMClient, stop: threading.Event, waiting, experiment_id: str | None = None):
    """Call the client in a thread, set `stop` once `waiting()` holds, and return what the call
    raised; the call must end within 30 s of the stop, not when its wait would have."""
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.complete("researcher", HELLO, experiment_id=experiment_id)
        except BaseException as error:  # noqa: BLE001  handed to the test thread
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    while not waiting():
        assert caller.is_alive()
        caller.join(0.01)
    stop.set()
    caller.join(timeout=30)
    assert not caller.is_alive(), "the call ignored the stop"
    return outcome[0]


def test_a_plain_call_returns_text_tokens_and_is_recorded(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, models={"default": LOCAL_MODEL, "coder": "openai/coder-model"})
    fake_llm.enqueue(Answer("hi there", prompt_tokens=11, completion_tokens=7))

    reply = client.complete("coder", HELLO, experiment_id="e0001")

    assert (reply.text, reply.prompt_tokens, reply.completion_tokens) == ("hi there", 11, 7)
    assert reply.model == "openai/coder-model" and reply.cost_usd == 0.0  # unknown local model, no price
    assert fake_llm.requests[0].body["model"] == "coder-model"
    assert fake_llm.requests[0].messages == HELLO
    [call] = records
    assert (call.run, call.experiment_id, call.role, call.model) == ("test-run", "e0001", "coder", "openai/coder-model")
    assert (call.prompt, call.response, call.error) == (HELLO, "hi there", "")
    assert (call.prompt_tokens, call.completion_tokens) == (11, 7)
    assert call.latency_s > 0
    assert client.spend.calls == 1


def test_rate_limit_is_retried_and_both_attempts_recorded(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records)
    fake_llm.enqueue(HttpError(429, retry_after="0.01"), Answer("ok"))

    reply = client.complete("researcher", HELLO)

    assert reply.text == "ok"
    assert len(fake_llm.requests) == 2
    assert [bool(r.error) for r in records] == [True, False]
    assert "RateLimitError" in records[0].error
    assert client.spend.calls == 2


def test_server_errors_are_retried_until_max_retries_then_fail(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, max_retries=2)
    fake_llm.enqueue(HttpError(500), HttpError(503), HttpError(502), Answer("never served"))

    with pytest.raises(LLMCallFailed, match="gave up after 3 attempts") as failure:
        client.complete("researcher", HELLO)

    assert failure.value.attempts == 3
    assert len(fake_llm.requests) == 3 and len(records) == 3
    assert all(r.error for r in records)


def test_bad_request_is_not_retried(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records)
    fake_llm.enqueue(HttpError(400, message="context too long"), Answer("never served"))

    with pytest.raises(LLMCallFailed, match="context too long") as failure:
        client.complete("researcher", HELLO)

    assert failure.value.attempts == 1
    assert len(fake_llm.requests) == 1 and len(records) == 1
    assert "BadRequestError" in records[0].error


def test_a_timeout_is_retried(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, timeout_s=0.5)
    fake_llm.enqueue(Stall(seconds=30), Answer("after the stall"))

    reply = client.complete("analyst", HELLO)

    assert reply.text == "after the stall"
    assert len(fake_llm.requests) == 2
    assert "Timeout" in records[0].error and records[1].error == ""


def test_connection_errors_are_retried_and_recorded() -> None:
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    records: list[LLMCall] = []
    client = make_client(closed_url, records, max_retries=1)

    with pytest.raises(LLMCallFailed, match="gave up after 2 attempts"):
        client.complete("researcher", HELLO)

    assert len(records) == 2 and all("Connection" in r.error for r in records)


def test_retry_after_header_reaches_the_backoff(fake_llm: FakeLLMServer) -> None:
    client = make_client(fake_llm.base_url, [], max_retries=0)
    fake_llm.enqueue(HttpError(429, retry_after="7"))

    with pytest.raises(LLMCallFailed) as failure:
        client.complete("researcher", HELLO)

    assert retry_after_s(failure.value.__cause__) == 7.0


def test_a_stop_ends_a_long_backoff_at_once(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    stop = threading.Event()
    client = LLMClient(LLMConfig(models={"default": LOCAL_MODEL}, api_base=fake_llm.base_url, max_retries=3,
                                 backoff_base_s=600, backoff_cap_s=600), records.append, run="test-run", stop=stop)
    fake_llm.enqueue(HttpError(429, retry_after="600"))
    # once the first attempt failed, the client waits up to ten minutes before its retry
    error = stop_while_calling(client, stop, waiting=lambda: bool(records))
    assert isinstance(error, StopRequested)
    assert len(fake_llm.requests) == 1  # no retry was sent after the stop


def test_max_calls_stops_before_sending(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, max_calls=2)
    fake_llm.enqueue(Answer("1"), Answer("2"), Answer("3"))

    client.complete("researcher", HELLO)
    client.complete("researcher", HELLO)
    with pytest.raises(BudgetExhausted, match="2 of 2 calls"):
        client.complete("researcher", HELLO)

    assert len(fake_llm.requests) == 2 and len(records) == 2
    assert fake_llm.pending() == 1


def test_dollar_budget_with_a_price_override_runs_out_mid_run(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    price = ModelPrice(input_per_mtok=1000.0, output_per_mtok=500.0)  # 100 in + 20 out tokens = $0.11
    client = make_client(fake_llm.base_url, records, budget_usd=0.3, prices={LOCAL_MODEL: price})
    fake_llm.enqueue(*[Answer("x", prompt_tokens=100, completion_tokens=20)] * 4)

    for _ in range(3):  # spent before each: 0, 0.11, 0.22 < 0.3
        client.complete("researcher", HELLO)
    with pytest.raises(BudgetExhausted, match=r"\$0.3300 of \$0.30"):
        client.complete("researcher", HELLO)

    assert len(fake_llm.requests) == 3
    assert [r.cost_usd for r in records] == pytest.approx([0.11] * 3)
    assert client.spend.spent_usd == pytest.approx(0.33)
    assert sum(r.prompt_tokens for r in records) == 300


def test_known_models_are_priced_by_litellm(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, models={"default": "openai/gpt-4o-mini"})
    fake_llm.enqueue(Answer("x", prompt_tokens=1000, completion_tokens=200))

    reply = client.complete("researcher", HELLO)

    table = litellm.model_cost["gpt-4o-mini"]
    expected = 1000 * table["input_cost_per_token"] + 200 * table["output_cost_per_token"]
    assert expected > 0
    assert reply.cost_usd == pytest.approx(expected) == records[0].cost_usd


def test_spend_seeded_on_resume_counts_against_the_budget(fake_llm: FakeLLMServer) -> None:
    config = LLMConfig(models={"default": LOCAL_MODEL}, api_base=fake_llm.base_url, budget_usd=1.0, max_calls=10)
    resumed = LLMClient(config, [].append, run="r", spent_usd=1.0, calls=3)

    with pytest.raises(BudgetExhausted):
        resumed.complete("researcher", HELLO)
    assert fake_llm.requests == []


def test_concurrent_calls_never_exceed_max_calls(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, max_calls=5)
    fake_llm.enqueue(*[Answer("x")] * 8)
    outcomes: list[str] = []

    def call() -> None:
        try:
            client.complete("researcher", HELLO)
            outcomes.append("ok")
        except BudgetExhausted:
            outcomes.append("budget")

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["budget"] * 3 + ["ok"] * 5
    assert len(fake_llm.requests) == 5 and len(records) == 5


def test_the_api_key_comes_from_the_named_variable_and_is_never_recorded(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHLAB_TEST_KEY", "sk-secret-123")
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, api_key_env="ARCHLAB_TEST_KEY")
    fake_llm.enqueue(Answer("x"))

    client.complete("researcher", HELLO)

    assert "sk-secret-123" not in records[0].model_dump_json()
    assert "sk-secret-123" not in client.config.model_dump_json()


def test_a_missing_key_variable_is_a_clear_error() -> None:
    config = LLMConfig(models={"default": LOCAL_MODEL}, api_key_env="ARCHLAB_SURELY_UNSET_VARIABLE")
    with pytest.raises(ValueError, match="ARCHLAB_SURELY_UNSET_VARIABLE"):
        LLMClient(config, [].append, run="r")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"models": {"coder": "openai/x"}}, '"default"'),
        ({"models": {"default": "openai/x", "resercher": "openai/y"}}, "unknown role"),
        ({"models": {"default": "openai/x"}, "temperatures": {"coder": 3.0}}, r"\[0, 2\]"),
        ({"models": {"default": "openai/x"}, "budget_usd": 0}, "greater than 0"),
        ({"models": {"default": "openai/x"}, "api_key": "sk-1"}, "Extra inputs"),
    ],
)
def test_bad_configuration_says_what_to_fix(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LLMConfig(**settings)


def test_per_role_models_and_temperatures(fake_llm: FakeLLMServer) -> None:
    client = make_client(
        fake_llm.base_url,
        [],
        models={"default": LOCAL_MODEL, "coder": "openai/coder-model"},
        temperatures={"coder": 0.1},
    )
    fake_llm.enqueue(Answer("a"), Answer("b"))

    client.complete("coder", HELLO)
    client.complete("analyst", HELLO)

    coder_request, analyst_request = fake_llm.requests
    assert (coder_request.body["model"], coder_request.body["temperature"]) == ("coder-model", 0.1)
    assert (analyst_request.body["model"], analyst_request.body["temperature"]) == ("local-test-model", 0.7)


def test_malformed_messages_and_unknown_roles_are_refused_before_any_call(fake_llm: FakeLLMServer) -> None:
    client = make_client(fake_llm.base_url, [])
    with pytest.raises(ValueError, match=r"messages\[0\]"):
        client.complete("researcher", [{"role": "robot", "content": "x"}])
    with pytest.raises(ValueError, match="unknown role 'reviewer'"):
        client.complete("reviewer", HELLO)
    assert fake_llm.requests == [] and client.spend.calls == 0


def test_importing_the_client_does_not_reach_for_the_network() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    done = subprocess.run(
        [sys.executable, "-c", "import agents.llm.client, os; print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'])"],
        cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "remote model cost map" not in done.stderr


def test_a_stop_abandons_a_reply_in_flight_and_records_the_attempt(fake_llm: FakeLLMServer) -> None:
    """Ctrl-C while a slow model answers: the step ends now, not after `timeout_s`."""
    records: list[LLMCall] = []
    stop = threading.Event()
    client = LLMClient(LLMConfig(models={"default": LOCAL_MODEL}, api_base=fake_llm.base_url, timeout_s=600),
                       records.append, run="test-run", stop=stop)
    fake_llm.enqueue(Stall(600))
    # once the request reached the server, which holds it for ten minutes
    error = stop_while_calling(client, stop, waiting=lambda: bool(fake_llm.requests), experiment_id="e0007")
    assert isinstance(error, StopRequested)
    [attempt] = records
    assert attempt.error.startswith("abandoned") and attempt.experiment_id == "e0007" and attempt.response == ""
    assert client.spend.calls == 1  # the abandoned attempt still counts against max_calls


def test_cached_prompt_tokens_are_recorded_and_priced_at_the_cached_rate(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    price = ModelPrice(input_per_mtok=1000.0, output_per_mtok=2000.0, cached_input_per_mtok=100.0)
    client = make_client(fake_llm.base_url, records, prices={LOCAL_MODEL: price})
    fake_llm.enqueue(Answer("x", prompt_tokens=1000, completion_tokens=10, cached_tokens=800))

    reply = client.complete("researcher", HELLO)

    assert reply.cached_tokens == 800 == records[0].cached_tokens
    assert reply.cost_usd == pytest.approx((200 * 1000 + 800 * 100 + 10 * 2000) / 1e6) == records[0].cost_usd


def test_litellm_prices_cache_reads_of_known_models(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records, models={"default": "openai/gpt-4o-mini"})
    fake_llm.enqueue(Answer("x", prompt_tokens=1000, completion_tokens=200, cached_tokens=600))

    reply = client.complete("researcher", HELLO)

    table = litellm.model_cost["gpt-4o-mini"]
    expected = (400 * table["input_cost_per_token"] + 600 * table["cache_read_input_token_cost"]
                + 200 * table["output_cost_per_token"])
    assert table["cache_read_input_token_cost"] < table["input_cost_per_token"]
    assert reply.cost_usd == pytest.approx(expected) and reply.cached_tokens == 600


def test_the_static_system_prompt_is_marked_for_caching_only_where_the_provider_needs_it() -> None:
    messages = [{"role": "system", "content": "role, format, task, contract"}, {"role": "user", "content": "now"}]
    marked = with_cache_markers("anthropic/claude-sonnet-4-5", messages)
    assert marked[0] == {"role": "system", "content": [{"type": "text", "text": "role, format, task, contract",
                                                        "cache_control": {"type": "ephemeral"}}]}
    assert marked[1] == messages[1]
    assert with_cache_markers("openai/gpt-4o-mini", messages) is messages  # OpenAI caches prefixes by itself
    assert with_cache_markers(LOCAL_MODEL, messages) is messages


def test_a_cut_off_reply_says_so(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    client = make_client(fake_llm.base_url, records)
    fake_llm.enqueue(Answer('{"name": "x", "motiv', finish_reason="length"))
    reply = client.complete("researcher", HELLO)
    assert reply.truncated and records[0].meta == {"finish_reason": "length"}
