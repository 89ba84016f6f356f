"""The role templates render from typed context, carry the contract verbatim, and refuse
a context that lacks a field (StrictUndefined)."""
from __future__ import annotations

from pathlib import Path

import pytest

from agents.answers import Proposal
from agents.context import (
    AnalystContext,
    CheckFailure,
    CoderContext,
    ExperimentBrief,
    InsightBrief,
    JudgeContext,
    Neighbour,
    RejectedMotivation,
    RepairContext,
    ResearcherContext,
    TaskBrief,
    code_diff,
)
from agents.prompting import PROMPTS_DIR, PromptError, Prompts
from evaluator.families.mixer import contract_text

PARENT_CODE = "import torch\n\n\nclass Mixer(torch.nn.Module):\n    pass  # parent body\n"
CHILD_CODE = PARENT_CODE.replace("pass  # parent body", "pass  # child body")
TASK = TaskBrief(name="mqar", family="mixer", description="Multi-query associative recall at lengths 64-512.", contract=contract_text())
PARENT = ExperimentBrief(
    id="e0003", name="retention-decay", motivation="fixed decay forgets old keys", code=PARENT_CODE,
    status="ok", fitness=0.12, metrics={"accuracy": 0.81, "parameters": 120000}, analysis="Decay helps short ranges.",
)
REFERENCE = ExperimentBrief(id="ref-softmax", name="softmax-attention", motivation="the quality ceiling", code="# softmax\n")
CHILD = ExperimentBrief(id="e0009", name="learned-decay", motivation="learn the decay per head", plan="1. gate", code=CHILD_CODE,
                        status="ok", fitness=0.2, metrics={"accuracy": 0.86})
SIBLING = ExperimentBrief(id="e0008", name="sibling-crashed", status="crashed", reason="shape mismatch", metrics={})
PROPOSAL = Proposal(name="learned-decay", motivation="learn the decay per head", plan="1. project\n2. gate the decay")

FULL_CONTEXTS = {
    "researcher.j2": ResearcherContext(
        task=TASK, parent=PARENT, references=[REFERENCE],
        insights=[InsightBrief(title="Gating sharpens recall", text="data-dependent gates let a layer forget", source="cognition")],
        rejected=[RejectedMotivation(name="decay-again", motivation="use exponential decay",
                                     neighbours=[Neighbour(name="retention-decay", motivation="fixed decay", similarity=0.934)])],
        idea="Try a chunked delta rule with a learned step size.",
    ),
    "coder.j2": CoderContext(task=TASK, proposal=PROPOSAL, parent=PARENT),
    "coder_repair.j2": RepairContext(task=TASK, proposal=PROPOSAL, code=CHILD_CODE,
                                     failure=CheckFailure(check="causality", reason="output at t=3 changed when x[5] moved", line=5),
                                     attempt=2, max_attempts=3),
    "analyst.j2": AnalystContext(task=TASK, experiment=CHILD, diff=code_diff(PARENT_CODE, CHILD_CODE),
                                 parent=PARENT, siblings=[SIBLING], baseline=REFERENCE),
    "judge.j2": JudgeContext(task=TASK, experiment=CHILD, references=[REFERENCE]),
}
ROLE_OF_TEMPLATE = {"researcher.j2": "researcher", "coder.j2": "coder", "coder_repair.j2": "coder",
                    "analyst.j2": "analyst", "judge.j2": "judge"}


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts()


BARE_CONTEXTS = {
    "researcher.j2": ResearcherContext(task=TASK),
    "coder.j2": CoderContext(task=TASK, proposal=PROPOSAL.model_copy(update={"plan": "another plan"})),
    "coder_repair.j2": RepairContext(task=TASK, proposal=PROPOSAL, code="x = 1\n", attempt=1, max_attempts=1,
                                     failure=CheckFailure(check="forward", reason="shape")),
    "analyst.j2": AnalystContext(task=TASK, experiment=REFERENCE, diff=""),
    "judge.j2": JudgeContext(task=TASK, experiment=REFERENCE),
}


@pytest.mark.parametrize("template", sorted(FULL_CONTEXTS))
def test_each_role_template_puts_the_static_part_first_with_the_contract_verbatim(prompts: Prompts, template: str) -> None:
    """The system message holds the role, the answer format, the task and the contract: the same
    for every call of a role in a run, so providers can cache it as a prefix."""
    system, user = prompts.messages(template, **dict(FULL_CONTEXTS[template]))
    other_system, other_user = prompts.messages(template, **dict(BARE_CONTEXTS[template]))
    assert (system["role"], user["role"]) == ("system", "user")
    assert f"archlab role: {ROLE_OF_TEMPLATE[template]}" in system["content"]
    assert contract_text().strip() in system["content"] and TASK.description in system["content"]
    assert contract_text().strip() not in user["content"]
    assert system == other_system and user != other_user
    if ROLE_OF_TEMPLATE[template] == "coder":
        assert "<<<<<<< SEARCH" in system["content"] and "not JSON" in system["content"]
    else:
        assert "ONE JSON object" in system["content"]


def test_researcher_prompt_shows_parent_references_insights_rejections_and_the_idea(prompts: Prompts) -> None:
    _, user = prompts.messages("researcher.j2", **dict(FULL_CONTEXTS["researcher.j2"]))
    text = user["content"]
    for expected in (PARENT_CODE.rstrip(), "fixed decay forgets old keys", "accuracy: 0.81", "Decay helps short ranges.",
                     "softmax-attention", "Gating sharpens recall", "use exponential decay", "similarity 0.93",
                     "chunked delta rule with a learned step size"):
        assert expected in text


def test_researcher_prompt_without_parent_or_extras(prompts: Prompts) -> None:
    _, user = prompts.messages("researcher.j2", **dict(ResearcherContext(task=TASK)))
    assert "There is no parent" in user["content"]
    assert "turned down" not in user["content"] and "from a person" not in user["content"]


def test_coder_prompt_offers_edits_only_with_a_parent(prompts: Prompts) -> None:
    _, with_parent = prompts.messages("coder.j2", **dict(FULL_CONTEXTS["coder.j2"]))
    assert PARENT_CODE.rstrip() in with_parent["content"] and PROPOSAL.plan in with_parent["content"]
    _, without = prompts.messages("coder.j2", **dict(CoderContext(task=TASK, proposal=PROPOSAL)))
    assert "There is no parent file to edit: answer with the whole file in one ```python block" in without["content"]


def test_repair_prompt_quotes_the_failing_line_and_report(prompts: Prompts) -> None:
    _, user = prompts.messages("coder_repair.j2", **dict(FULL_CONTEXTS["coder_repair.j2"]))
    assert "Check: causality" in user["content"]
    assert "Line 5: `pass  # child body`" in user["content"]
    assert "output at t=3 changed when x[5] moved" in user["content"]
    assert "attempt 2 of 3" in user["content"]


def test_analyst_prompt_shows_the_diff_and_the_comparisons(prompts: Prompts) -> None:
    _, user = prompts.messages("analyst.j2", **dict(FULL_CONTEXTS["analyst.j2"]))
    text = user["content"]
    assert "-    pass  # parent body\n+    pass  # child body" in text
    assert "Parent: retention-decay (e0003): status ok, fitness 0.12; accuracy 0.81" in text
    assert "sibling-crashed (e0008): status crashed" in text
    assert "Baseline: softmax-attention" in text


def test_a_missing_field_is_an_error_not_an_empty_prompt(prompts: Prompts) -> None:
    fields = dict(FULL_CONTEXTS["researcher.j2"])
    del fields["idea"]
    with pytest.raises(PromptError, match="'idea' is undefined"):
        prompts.messages("researcher.j2", **fields)


def test_a_missing_nested_field_is_an_error(prompts: Prompts) -> None:
    fields = dict(FULL_CONTEXTS["coder_repair.j2"])
    fields["failure"] = {"check": "causality", "line": None}  # no reason
    with pytest.raises(PromptError, match="reason"):
        prompts.messages("coder_repair.j2", **fields)


def test_unknown_templates_and_templates_without_message_blocks_are_refused(prompts: Prompts, tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="no template nope.j2"):
        prompts.messages("nope.j2")
    (tmp_path / "flat.j2").write_text("just text {{ x }}")
    with pytest.raises(PromptError, match="must define blocks"):
        Prompts(tmp_path).messages("flat.j2", x=1)


def test_prompts_live_in_the_project_prompt_directory() -> None:
    assert PROMPTS_DIR == Path(__file__).resolve().parents[1] / "prompts"
    for template in [*FULL_CONTEXTS, "structured_retry.j2", "code_retry.j2", "_macros.j2"]:
        assert (PROMPTS_DIR / template).is_file()
