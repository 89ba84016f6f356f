"""The coder over real HTTP (litellm -> the local OpenAI-compatible test server): plain-text
answers in the formats real models send, near-misses included, each used as is, repaired, or
answered by one corrective retry that quotes exactly what went wrong."""
from __future__ import annotations

import pytest

from agents.answers import Proposal
from agents.context import CheckFailure, CoderContext, ExperimentBrief, RepairContext, TaskBrief
from agents.llm.client import LLMClient
from agents.llm.config import LLMConfig
from agents.llm.errors import StructuredOutputError
from agents.roles import Roles
from evaluator.families.mixer import contract_text
from knowledge.records import LLMCall
from tests.support.fake_llm_server import Answer, FakeLLMServer, cut_off, python_answer, search_replace
from tests.test_roles_edits import PARENT

TASK = TaskBrief(name="mqar", family="mixer", description="Associative recall.", contract=contract_text())
PROPOSAL = Proposal(name="residual-out", motivation="a residual path eases optimisation", plan="add x to the output")
PARENT_BRIEF = ExperimentBrief(id="e0002", name="projected", code=PARENT, status="ok", fitness=0.1)
WANTED = PARENT.replace("        return self.out(y)\n", "        return self.out(y) + x\n")
GOOD_EDIT = search_replace(("        return self.out(y)\n", "        return self.out(y) + x\n"))


def make_roles(server: FakeLLMServer, records: list[LLMCall]) -> Roles:
    config = LLMConfig(models={"default": "openai/local-coder"}, api_base=server.base_url, timeout_s=5, max_retries=0)
    return Roles(LLMClient(config, records.append, run="r"))


def write(server: FakeLLMServer, records: list[LLMCall], parent: ExperimentBrief | None = PARENT_BRIEF):
    return make_roles(server, records).write_code(CoderContext(task=TASK, proposal=PROPOSAL, parent=parent), "e0003")


def test_a_whole_file_with_prose_around_it_is_used_at_once(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    fake_llm.enqueue(python_answer(WANTED, before="Sure! I added a residual path.", after="Let me know if it helps."))

    written = write(fake_llm, records)

    assert (written.code, written.mode) == (WANTED, "full")
    assert written.notes == ("2 line(s) of prose around the code ignored",)
    [call] = records
    assert "response_format" not in fake_llm.requests[0].body  # code is plain text, never JSON mode
    assert call.meta["choice"] == {"model": "openai/local-coder", "reason": "only model",
                                   "probabilities": {"openai/local-coder": 1.0}, "outcomes": {"openai/local-coder": 0}}
    assert call.meta["prompt"]["dropped"] == [] and call.meta["finish_reason"] == "stop"
    assert call.meta["prompt"]["tokens"] == call.meta["prompt"]["full_tokens"] > 1000


def test_a_usage_example_beside_the_file_is_ignored(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(Answer(f"```python\n{WANTED}```\nTry it:\n```python\nm = Mixer(64, 4)\nm(torch.randn(1, 8, 64))\n```\n"))
    written = write(fake_llm, [])
    assert written.code == WANTED and "kept the only one that is a whole file" in written.notes[0]
    assert len(fake_llm.requests) == 1


def test_search_replace_edits_apply_to_the_parent(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(GOOD_EDIT)
    written = write(fake_llm, [])
    assert (written.code, written.mode) == (WANTED, "edit")


def test_a_search_block_indented_wrongly_but_uniformly_is_reindented(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(search_replace(("def forward(self, x):\n    y = self.proj(x)\n    return self.out(y)\n",
                                     "def forward(self, x):\n    y = self.proj(x)\n    return self.out(y) + x\n")))
    written = write(fake_llm, [])
    assert written.code == WANTED and "re-indented its replacement" in written.notes[-1]
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize(("first", "quoted"), [
    pytest.param(search_replace(("    def forward(self, x):\n    y = self.proj(x)\n", "")),
                 "matches the file only if whitespace is ignored (and not by one indentation shift); the file has, "
                 "at lines 10-11:\n   10 |     def forward(self, x):\n   11 |         y = self.proj(x)", id="jumbled-indentation"),
    pytest.param(search_replace(("        return self.output(y)\n", "")),
                 "does not occur in the file. The closest is line 12:\n   12 |         return self.out(y)",
                 id="no-match"),
    pytest.param(search_replace(("torch.nn.Linear(d_model, d_model)", "torch.nn.Identity()")),
                 "matches 2 places (lines 7 and 8 of the file): add neighbouring lines", id="several-matches"),
    pytest.param(Answer("I would add a residual connection from x to the output projection."),
                 "the answer contains no ```python block", id="no-block"),
    pytest.param(Answer('{"mode": "full", "code": "import torch"}'), "the answer contains no ```python block",
                 id="old-json-format"),
    pytest.param(cut_off(python_answer(WANTED)), "cut off at the output token limit inside the ```python block",
                 id="cut-off"),
])
def test_an_unusable_answer_gets_one_retry_quoting_what_went_wrong(fake_llm: FakeLLMServer, first: Answer,
                                                                  quoted: str) -> None:
    records: list[LLMCall] = []
    fake_llm.enqueue(first, GOOD_EDIT)

    written = write(fake_llm, records)

    assert written.code == WANTED and written.notes[0].startswith("corrective retry after: ")
    retry = fake_llm.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": first.content}
    assert quoted in retry[-1]["content"]
    assert [r.meta["finish_reason"] for r in records] == [first.finish_reason, "stop"]


def test_a_cut_off_file_is_asked_again_as_edits(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(cut_off(python_answer(WANTED)), GOOD_EDIT)
    write(fake_llm, [])
    assert "Send SEARCH/REPLACE blocks against the file you were given instead of the whole file" in \
        fake_llm.requests[1].messages[-1]["content"]


def test_edits_without_a_file_to_edit_ask_for_the_whole_file(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(GOOD_EDIT, python_answer(WANTED))
    written = write(fake_llm, [], parent=None)
    assert written.code == WANTED
    correction = fake_llm.requests[1].messages[-1]["content"]
    assert "SEARCH/REPLACE blocks need a file to edit, and there is none here" in correction
    assert "The form: the whole file in ONE ```python block." in correction


def test_two_unusable_answers_fail_the_step_with_both_reasons(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(cut_off(python_answer(WANTED)), cut_off(python_answer(WANTED)))
    with pytest.raises(StructuredOutputError) as failure:
        write(fake_llm, [])
    assert failure.value.reason.startswith("coder gave no usable code after a corrective retry: the answer was cut off")
    assert "(first answer: the answer was cut off" in failure.value.reason


def test_a_repair_edits_the_failing_file(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(search_replace(("        y = self.proj(x)\n", "        y = self.proj(x).tanh()\n")))
    context = RepairContext(task=TASK, proposal=PROPOSAL, code=PARENT, attempt=1, max_attempts=2,
                            failure=CheckFailure(check="forward", reason="values overflow in bf16", line=11))
    written = make_roles(fake_llm, []).repair(context, "e0003")
    assert "y = self.proj(x).tanh()" in written.code
    assert "Line 11: `y = self.proj(x)`" in fake_llm.requests[0].messages[1]["content"]
