"""A discovery run with LLM roles, end to end: litellm talks over real HTTP to a local
OpenAI-compatible server that answers from a script, and candidates really train.

The script covers what production meets: a malformed answer, a rate limit, a timeout, code
that fails a check and is repaired, a motivation the novelty gate refuses, and a call budget
that runs out mid-run.
"""
from __future__ import annotations

import json

import pytest

from archlab.cli import main
from knowledge.archive import Archive
from knowledge.records import Stage
from tests.loop_candidates import CUMULATIVE_MEAN, RUNNING_MAX, WHOLE_SEQUENCE_MEAN
from tests.loop_support import write_config
from tests.support.fake_llm_server import Answer, HttpError, Stall, python_answer, search_replace

pytestmark = pytest.mark.slow

MEAN_MOTIVATION = ("Recall needs a summary of everything seen so far; a gated running mean of value "
                   "projections is the cheapest causal summary and tests whether averaging alone helps.")
MAX_MOTIVATION = ("Max-pooling over the prefix keeps the strongest evidence for each feature instead of "
                  "diluting it, which may bind rare keys to values better than averaging does.")


def proposal(name: str, motivation: str) -> Answer:
    return Answer(json.dumps({"name": name, "motivation": motivation, "plan": "Project, accumulate, gate, project."}))


def code(source: str) -> Answer:
    return python_answer(source, before="Here is the complete candidate file.")


# The repair as a SEARCH/REPLACE block indented 4 spaces short on every line, as models often send it
MEAN_FIX_MISINDENTED = search_replace((
    "    steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=value.dtype).view(1, -1, 1)\n"
    "    return self.proj_out(value.mean(dim=1, keepdim=True).expand_as(value) * F.silu(gate))\n",
    "    steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=value.dtype).view(1, -1, 1)\n"
    "    return self.proj_out(torch.cumsum(value, dim=1) / steps * F.silu(gate))\n"), before="The mean must be causal:")

ANALYSIS = Answer(json.dumps({
    "summary": "The running mean trains but recalls little.", "tried": "a gated running mean",
    "outcome_vs_expected": "worse than the baseline, as feared", "why": "averaging blurs key-value bindings",
    "lessons": ["a mean cannot separate many pairs"], "suggested_next": ["try a delta-rule state"]}))


def test_llm_run_recovers_from_bad_answers_and_stops_at_its_budget(tmp_path, fake_llm, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, experiments=2, workers=1, extra=(
        f'[llm]\nmodels = {{ default = "openai/scripted" }}\napi_base = "{fake_llm.base_url}"\n'
        'timeout_s = 3\nmax_retries = 2\nbackoff_base_s = 0.1\nbackoff_cap_s = 0.5\nmax_calls = 10\n'))
    config.write_text(config.read_text().replace("cascade_seeds = 1", "cascade_seeds = 0\nrepair_tries = 1"))
    fake_llm.enqueue(Answer("I think a running mean is great! {not json"), proposal("running-mean", MEAN_MOTIVATION),
                     proposal("running-mean-again", MEAN_MOTIVATION), proposal("running-max", MAX_MOTIVATION),
                     role="researcher")
    fake_llm.enqueue(HttpError(429, retry_after="0"), code(WHOLE_SEQUENCE_MEAN), MEAN_FIX_MISINDENTED,
                     code(RUNNING_MAX), role="coder")
    fake_llm.enqueue(Stall(5.0, then=ANALYSIS), ANALYSIS, ANALYSIS, role="analyst")

    exit_code = main(["run", "--config", str(config), "--name", "llm"])
    assert exit_code == 0

    with Archive.open(tmp_path / "runs" / "llm" / "archive.sqlite") as archive:
        first, second = [e for e in archive.experiments(run="llm") if e.proposer != "reference"]
        calls = archive.llm_calls(run="llm")
        events = archive.events(run="llm")

    # e0002: malformed answer retried once, 429 retried, leaky code repaired by a misindented edit, analyst
    # timeout retried
    assert first.stage is Stage.ANALYZED and first.status == "ok", first.reason
    assert first.name == "running-mean" and first.proposer == "llm:openai/scripted"
    assert first.code.strip() == CUMULATIVE_MEAN.strip()
    assert first.analysis["lessons"] == ["a mean cannot separate many pairs"]
    assert first.fitness is not None and first.tokens > 0
    corrective = fake_llm.requests_for("researcher")[1]
    assert "not json" in json.dumps(corrective.messages)  # the model is shown its bad answer
    repair = fake_llm.requests_for("coder")[2]
    assert "causal" in json.dumps(repair.messages).lower()  # the failing check's report reaches the coder
    coder_notes = [e.message for e in events if e.kind == "coder" and e.experiment_id == first.id]
    assert coder_notes[0] == "written: whole file: 1 line(s) of prose around the code ignored"
    assert coder_notes[1] == ("repair 1: edits applied: 1 line(s) of prose around the code ignored; SEARCH block 1: "
                              "matched lines 16-17 with every line indented 4 spaces deeper in the file; re-indented "
                              "its replacement the same way")
    answered = [c for c in calls if not c.error]
    assert all(c.meta["choice"]["model"] == "openai/scripted" and c.meta["prompt"]["dropped"] == [] for c in answered)

    # e0003: the same motivation again is refused by the novelty gate, with the nearest one shown
    novelty_retry = fake_llm.requests_for("researcher")[3]
    assert MEAN_MOTIVATION in json.dumps(novelty_retry.messages)
    assert second.name == "running-max" and second.code.strip() == RUNNING_MAX.strip()

    # the 11th call would exceed max_calls: it is never sent, and e0003 waits, unfinished, for a resume
    assert len(calls) == 10 and len(fake_llm.requests) == 10
    assert {c.role for c in calls if c.error} == {"coder", "analyst"}  # the 429 and the timeout
    assert second.stage is Stage.EVALUATED and not second.reason
    assert any(e.kind == "budget" for e in events)
