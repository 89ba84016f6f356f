"""Prompts fitted to each model's token budget: what goes first (older insights, then reference
code, then the parent's analysis), what never goes (the task, the contract), and the record of
it with the call; the budget from litellm's table, the configuration or a default."""
from __future__ import annotations

import json

import pytest

from agents.context import (AnalystContext, CoderContext, ExperimentBrief, InsightBrief, JudgeContext, ResearcherContext,
                            TaskBrief)
from agents.context_trims import trims_for
from agents.llm.budget import Trim, fit_prompt
from agents.llm.capabilities import count_tokens, prompt_budget
from agents.llm.client import LLMClient
from agents.llm.config import LLMConfig
from agents.llm.errors import PromptTooLong
from agents.prompting import Prompts
from agents.roles import Roles
from evaluator.families.mixer import contract_text
from knowledge.records import LLMCall
from tests.support.fake_llm_server import Answer, FakeLLMServer

TASK = TaskBrief(name="mqar", family="mixer", description="Associative recall.", contract=contract_text())
CODE = "import torch\n\n\nclass Mixer(torch.nn.Module):\n" + "".join(f"    # line {i} of the design\n" for i in range(40))
PARENT = ExperimentBrief(id="e0007", name="parent", motivation="m", code=CODE, status="ok", fitness=0.1,
                         analysis="Decay helps short ranges.\n- keep the conv")
REFERENCES = [ExperimentBrief(id="e0001", name="gated-delta", code=CODE, status="ok", fitness=0.0),
              ExperimentBrief(id="e0003", name="retnet", code=CODE, status="ok", fitness=-0.1)]
LONG = "a finding that took many words to state " * 12
INSIGHTS = [InsightBrief(title="newest", text=LONG, source="analysis", experiment_id="e0009"),
            InsightBrief(title="design note", text=LONG, source="cognition"),
            InsightBrief(title="oldest", text=LONG, source="analysis", experiment_id="e0002")]
CONTEXT = ResearcherContext(task=TASK, parent=PARENT, references=REFERENCES, insights=INSIGHTS)
PROPOSAL = json.dumps({"name": "n", "motivation": "m", "plan": "p"})


def test_the_researcher_plan_drops_older_insights_then_reference_code_then_the_parents_analysis() -> None:
    assert [trim.label for trim in trims_for(CONTEXT)] == [
        "insight 'oldest' (from e0002)", "insight 'newest' (from e0009)", "insight 'design note' (cognition)",
        "code of reference e0003 (retnet)", "code of reference e0001 (gated-delta)", "analysis of parent e0007",
        "reference e0003 (retnet)", "reference e0001 (gated-delta)", "code of parent e0007"]


def test_other_roles_plans() -> None:
    sibling = ExperimentBrief(id="e0008", name="sib")
    assert [t.label for t in trims_for(CoderContext(task=TASK, proposal={"name": "n", "motivation": "m", "plan": "p"},
                                                    parent=PARENT))] == ["code of parent e0007 (the coder writes the whole file)"]
    assert [t.label for t in trims_for(AnalystContext(task=TASK, experiment=PARENT, diff="", parent=PARENT,
                                                      siblings=[sibling]))] == ["sibling e0008 (sib)", "motivation of parent e0007"]
    assert [t.label for t in trims_for(JudgeContext(task=TASK, experiment=PARENT, references=REFERENCES[:1]))] == [
        "code of reference e0001 (gated-delta)", "reference e0001 (gated-delta)"]


def test_fitting_stops_as_soon_as_the_prompt_fits_and_says_what_went() -> None:
    def render(text: str) -> list[dict]:
        return [{"role": "user", "content": text}]

    trims = [Trim("last word", lambda t: t.rsplit(" ", 1)[0]), Trim("another word", lambda t: t.rsplit(" ", 1)[0]),
             Trim("never needed", lambda t: "")]
    fitted = fit_prompt("one two three four", render, trims, lambda m: len(m[0]["content"].split()), budget=2)
    assert (fitted.messages, fitted.tokens, fitted.full_tokens, fitted.dropped) == (render("one two"), 2, 4,
                                                                                     ("last word", "another word"))
    assert fitted.as_record() == {"tokens": 2, "full_tokens": 4, "budget": 2, "dropped": ["last word", "another word"]}
    with pytest.raises(PromptTooLong, match=r"needs 3 tokens even with 1 part\(s\) dropped \(last word\), over the "
                                            r"budget of 1 \(the reason\)"):
        fit_prompt("one two three four", render, trims[:1], lambda m: len(m[0]["content"].split()), 1, "the reason")


def _roles(server: FakeLLMServer, records: list[LLMCall], **settings) -> Roles:
    config = LLMConfig(models={"default": "openai/small"}, api_base=server.base_url, timeout_s=5, max_retries=0,
                       **settings)
    return Roles(LLMClient(config, records.append, run="r"))


def test_an_over_budget_prompt_is_trimmed_and_the_trims_are_recorded_with_the_call(fake_llm: FakeLLMServer) -> None:
    render = Prompts().messages
    full = count_tokens("openai/small", render("researcher.j2", **dict(CONTEXT)))
    records: list[LLMCall] = []
    fake_llm.enqueue(Answer(PROPOSAL))

    _roles(fake_llm, records, max_prompt_tokens=full - 20).propose(CONTEXT, "e0010")

    sent = fake_llm.requests[0].messages
    [call] = records
    assert call.meta["prompt"] == {"tokens": count_tokens("openai/small", sent), "full_tokens": full,
                                   "budget": full - 20, "dropped": ["insight 'oldest' (from e0002)"]}
    text = json.dumps(sent)
    assert "oldest" not in text and "newest" in text and json.dumps(contract_text().strip())[1:-1] in text


def test_a_small_window_keeps_the_contract_and_drops_down_the_plan(fake_llm: FakeLLMServer) -> None:
    """The window fits the prompt once its first six parts are gone (insights, reference code, the parent's
    analysis), measured here, so a longer contract or template moves the window rather than breaking the test."""
    trimmed = CONTEXT
    for trim in trims_for(CONTEXT)[:6]:
        trimmed = trim.apply(trimmed)
    window = count_tokens("openai/small", Prompts().messages("researcher.j2", **dict(trimmed))) + 512
    records: list[LLMCall] = []
    fake_llm.enqueue(Answer(PROPOSAL))
    _roles(fake_llm, records, context_windows={"openai/small": window}, reply_reserve_tokens=512).propose(CONTEXT,
                                                                                                         "e0010")
    dropped = records[0].meta["prompt"]["dropped"]
    assert dropped == [t.label for t in trims_for(CONTEXT)][:6]
    assert records[0].meta["prompt"]["tokens"] <= window - 512
    assert contract_text().strip() in fake_llm.requests[0].messages[0]["content"]


def test_a_prompt_that_cannot_fit_is_never_sent(fake_llm: FakeLLMServer) -> None:
    with pytest.raises(PromptTooLong) as failure:
        _roles(fake_llm, [], max_prompt_tokens=300).propose(CONTEXT, "e0010")
    assert "with 9 part(s) dropped" in str(failure.value)
    assert "researcher on openai/small: context window 32,768 (unknown model) less 4,096 reserved for the reply, " \
           "capped at 300" in str(failure.value)
    assert fake_llm.requests == []


def test_the_budget_comes_from_the_configuration_litellm_or_a_default() -> None:
    config = LLMConfig(models={"default": "x"}, context_windows={"openai/mine": 8192}, max_output_tokens=1024)
    assert prompt_budget(config, "openai/mine").tokens == 8192 - 1024
    known = prompt_budget(config, "gpt-4o-mini")
    assert (known.window, known.source, known.tokens) == (128000, "litellm", 128000 - 1024)
    assert prompt_budget(config, "openai/unknown-local").window == 32768
    capped = prompt_budget(config.model_copy(update={"max_prompt_tokens": 5000}), "gpt-4o-mini")
    assert capped.tokens == 5000 and capped.explain().endswith("capped at 5,000")
