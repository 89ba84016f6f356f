"""Replaying LLM answers and review decisions: a run recorded against the local OpenAI-compatible
test server is re-run with the server stopped (same code hashes and statuses), and the replay
client serves by experiment, role and order, replays failures, and says where a prompt changed
or an answer is missing."""
from __future__ import annotations

import pytest

from agents.llm.client import CallOptions
from agents.llm.config import LLMConfig
from agents.llm.errors import LLMCallFailed
from agents.llm.replay import ReplayClient
from agents.replay import DIVERGENCE, ReplayOrigin, ReplaySource
from agents.team_offline import OfflineAnalyst, OfflineCoder, OfflineResearcher
from agents.team import Team
from knowledge.archive import Archive
from knowledge.records import Event, Experiment, LLMCall, Stage
from tests.cli_support import cli
from tests.loop_candidates import CUMULATIVE_MEAN
from tests.loop_support import lab_in, write_config
from tests.support.fake_llm_server import Answer, HttpError
from tests.test_loop_llm import ANALYSIS, MEAN_MOTIVATION, code, proposal

ASKED = [{"role": "system", "content": "archlab role: researcher"}, {"role": "user", "content": "propose"}]


@pytest.mark.slow
def test_an_llm_run_replays_with_the_server_stopped(tmp_path, fake_llm):
    config = write_config(tmp_path, experiments=1, workers=1, extra=(
        f'[llm]\nmodels = {{ default = "openai/scripted" }}\napi_base = "{fake_llm.base_url}"\n'
        'timeout_s = 5\nmax_retries = 2\nbackoff_base_s = 0.1\nbackoff_cap_s = 0.5\n'))
    config.write_text(config.read_text().replace("cascade_seeds = 1", "cascade_seeds = 0"))
    fake_llm.enqueue(Answer("a running mean! {not json"), proposal("running-mean", MEAN_MOTIVATION), role="researcher")
    fake_llm.enqueue(HttpError(429, retry_after="0"), code(CUMULATIVE_MEAN), role="coder")
    fake_llm.enqueue(ANALYSIS, role="analyst")
    recorded = cli("run", "--config", str(config), "--name", "llm", cwd=tmp_path, timeout=600)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    served = len(fake_llm.requests)
    fake_llm.stop()

    run_dir = tmp_path / "runs" / "llm"
    replayed = cli("replay", str(run_dir), "--as", "llm-again", cwd=tmp_path, timeout=600)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "2 experiments, 2 the same, 0 diverged" in replayed.stdout
    assert len(fake_llm.requests) == served  # nothing was asked of a server
    with Archive.open(run_dir, readonly=True) as old, Archive.open(tmp_path / "runs" / "llm-again", readonly=True) as new:
        before, after = old.experiments(run="llm"), new.experiments(run="llm-again")
        old_calls, new_calls = old.llm_calls(run="llm"), new.llm_calls(run="llm-again")
        causes = {e.data["cause"] for e in new.events(run="llm-again", kind=DIVERGENCE)}
    assert causes <= {"prompt figures"}  # briefs show measured speed; no word of any prompt changed
    assert [(e.code_hash, e.status, e.name) for e in after] == [(e.code_hash, e.status, e.name) for e in before]
    assert after[1].status == "ok" and after[1].analysis == before[1].analysis
    assert [(c.role, c.response, bool(c.error)) for c in new_calls] == \
        [(c.role, c.response, bool(c.error)) for c in old_calls]  # the bad answer and the 429 replayed too
    assert sum(c.cost_usd for c in new_calls) == 0.0


def _recorded(tmp_path, calls: list[LLMCall], decisions: list[Event] = ()) -> ReplaySource:
    with Archive.open(tmp_path / "original.sqlite") as archive:
        for call in calls:
            archive.record_llm_call(call)
        for event in decisions:
            archive.log_event(event)
        return ReplaySource(ReplayOrigin(run_dir=tmp_path, run="old"), archive)


def _call(response: str = "", error: str = "", prompt=ASKED, exp: str = "e0002") -> LLMCall:
    return LLMCall(run="old", experiment_id=exp, role="researcher", model="openai/x", prompt=prompt,
                   response=response, error=error, prompt_tokens=10, completion_tokens=5, cost_usd=0.5)


def test_the_replay_client_serves_by_experiment_and_order_and_says_where_it_departs(tmp_path):
    source = _recorded(tmp_path, [
        _call(error="RateLimitError: 429"), _call("first"),                      # a retried failure, then an answer
        _call("other experiment", exp="e0003"),
        _call("second", prompt=[*ASKED, {"role": "user", "content": "again"}]),
        _call(error="abandoned: the run stopped before the reply came"),         # made again on resume: skipped
    ])
    config = LLMConfig(models={"default": "openai/x"}, api_key_env="NO_SUCH_KEY_VARIABLE", max_retries=2)
    with Archive.open(tmp_path / "new.sqlite") as archive:
        archive.add_experiments([Experiment(id=i, run="new") for i in ("e0002", "e0003")])
        client = ReplayClient(config, archive, "new", source)  # no key needed: nothing is sent
        assert client.complete("researcher", ASKED, "e0003").text == "other experiment"
        assert client.complete("researcher", ASKED, "e0002").text == "first"
        changed = [*ASKED, {"role": "user", "content": "once more"}]
        assert client.complete("researcher", changed, "e0002").text == "second"  # served, and the change said
        with pytest.raises(LLMCallFailed, match="no recorded answer for researcher attempt #4 of e0002"):
            client.complete("researcher", ASKED, "e0002")
        calls = archive.llm_calls(experiment_id="e0002")
        notes = [e.message for e in archive.events(kind=DIVERGENCE)]
    assert [(c.response, c.error[:16]) for c in calls] == [("", "ReplayedFailure:"), ("first", ""), ("second", ""),
                                                           ("", "MissingRecordedA")]
    assert all(c.cost_usd == 0.0 for c in calls) and client.spend.spent_usd == 1.5  # budgeted as recorded
    assert "researcher attempt #3 of e0002 differs" in notes[0] and "'once more'" in notes[0]
    assert "no recorded answer for researcher attempt #4 of e0002" in notes[1]


def test_review_decisions_are_posted_in_order_and_a_missing_one_fails_the_experiment(tmp_path):
    decision = {"action": "reject", "note": "repeats e0001", "code": "", "name": ""}
    source = _recorded(tmp_path, [], [Event(run="old", kind="review_decision", message="reject",
                                            experiment_id="e0002", data=decision)])
    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), "gated_delta_rule")
    (tmp_path / "new").mkdir()
    with lab_in(tmp_path / "new", team, "new") as lab:
        lab.archive.add_experiments([Experiment(id=i, run="new", stage=Stage.AWAITING_REVIEW) for i in ("e0002", "e0003")])
        assert source.post_decision(lab, "e0002")
        [posted] = lab.archive.events(experiment_id="e0002", kind="review_decision")
        assert posted.data == decision
        assert not source.post_decision(lab, "e0003")
        missing = lab.archive.get_experiment("e0003")
    assert missing.stage is Stage.FAILED and "no recorded review decision #1 for e0003" in missing.reason


def test_the_replay_uses_the_recorded_model_and_finish_reason(tmp_path):
    cut = _call('{"name": "x", "moti').model_copy(update={"model": "openai/strong", "meta": {"finish_reason": "length"},
                                                          "cached_tokens": 7})
    source = _recorded(tmp_path, [cut])
    config = LLMConfig(models={"default": "openai/x"}, model_weights={"researcher": {"openai/x": 1, "openai/strong": 1}})
    with Archive.open(tmp_path / "new.sqlite") as archive:
        archive.add_experiments([Experiment(id="e0002", run="new")])
        client = ReplayClient(config, archive, "new", source)
        choice = client.choose("researcher", "e0002")
        reply = client.complete("researcher", ASKED, "e0002", CallOptions(model=choice.model))
    assert (choice.model, choice.reason) == ("openai/strong", "replayed")
    assert reply.truncated and reply.cached_tokens == 7 and reply.model == "openai/strong"
