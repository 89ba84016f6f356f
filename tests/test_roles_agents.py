"""The roles end to end over real HTTP: typed context in, rendered prompt out, typed answer back,
with per-role scripts served concurrently, as several experiments in flight would be."""
from __future__ import annotations

import json
import threading

import pytest

from agents.answers import Analysis, JudgeScores, JudgeWeights, judge_weight
from agents.context import (
    AnalystContext,
    CheckFailure,
    CoderContext,
    ExperimentBrief,
    JudgeContext,
    RejectedMotivation,
    RepairContext,
    ResearcherContext,
    TaskBrief,
    code_diff,
    summarize_metrics,
)
from agents.llm.client import LLMClient
from agents.llm.config import LLMConfig
from agents.roles import Roles
from agents.llm.errors import StructuredOutputError
from evaluator.families.mixer import contract_text
from evaluator.records import CheckResult, EvalResult, Status
from knowledge.records import Experiment, Fitness, LLMCall
from tests.support.fake_llm_server import Answer, FakeLLMServer, python_answer, search_replace

TASK = TaskBrief(name="mqar", family="mixer", description="Associative recall.", contract=contract_text())
PARENT_CODE = "import torch\n\n\nclass Mixer(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
PARENT = ExperimentBrief(id="e0001", name="identity", motivation="a start", code=PARENT_CODE, status="ok", fitness=0.0)
PROPOSAL_JSON = {"name": "Scaled Identity", "motivation": "scaling helps", "plan": "multiply by a learned scalar"}


def make_roles(server: FakeLLMServer, records: list[LLMCall]) -> Roles:
    config = LLMConfig(
        models={"default": "openai/small", "coder": "openai/coder"},
        api_base=server.base_url,
        timeout_s=5,
        max_retries=0,
    )
    return Roles(LLMClient(config, records.append, run="r"))


def test_propose_code_repair_analyze_judge(fake_llm: FakeLLMServer) -> None:
    records: list[LLMCall] = []
    roles = make_roles(fake_llm, records)
    fixed = PARENT_CODE.replace("return x", "return x * 2.0")
    fake_llm.enqueue(Answer(json.dumps(PROPOSAL_JSON)), role="researcher")
    fake_llm.enqueue(search_replace(("        return x\n", "        return x * self.scale\n")), python_answer(fixed),
                     role="coder")
    fake_llm.enqueue(Answer(json.dumps({"summary": "scaling did nothing", "lessons": ["scale is redundant with norms"],
                                        "suggested_next": "try gating", "mood": "calm"})), role="analyst")
    fake_llm.enqueue(Answer('{"novelty": 2, "complexity": 1.4, "rationale": "a trivial variant"}'), role="judge")

    proposal = roles.propose(ResearcherContext(task=TASK, parent=PARENT), "e0002")
    code = roles.write_code(CoderContext(task=TASK, proposal=proposal, parent=PARENT), "e0002").code
    repaired = roles.repair(RepairContext(task=TASK, proposal=proposal, code=code, attempt=1, max_attempts=3,
                                          failure=CheckFailure(check="forward", reason="'Mixer' object has no attribute 'scale'", line=6)), "e0002")
    final = repaired.code
    child = ExperimentBrief(id="e0002", name=proposal.name, motivation=proposal.motivation, code=final, status="ok", fitness=0.0)
    analysis = roles.analyze(AnalystContext(task=TASK, experiment=child, diff=code_diff(PARENT.code, final), parent=PARENT), "e0002")
    scores = roles.judge(JudgeContext(task=TASK, experiment=child), "e0002")

    assert proposal.name == "scaled-identity"
    assert code.endswith("return x * self.scale\n") and final == fixed
    assert analysis == Analysis(summary="scaling did nothing", lessons=["scale is redundant with norms"], suggested_next=["try gating"])
    assert (scores.novelty, scores.complexity) == (2, 1)
    assert [r.role for r in records] == ["researcher", "coder", "coder", "analyst", "judge"]
    assert [r.model for r in records] == ["openai/small", "openai/coder", "openai/coder", "openai/small", "openai/small"]
    assert all(r.experiment_id == "e0002" for r in records)
    repair_request = fake_llm.requests_for("coder")[1]
    assert "'Mixer' object has no attribute 'scale'" in repair_request.messages[1]["content"]
    assert "return x * self.scale" in repair_request.messages[1]["content"]
    assert fake_llm.pending() == 0


def test_novelty_retry_shows_the_rejected_motivation(fake_llm: FakeLLMServer) -> None:
    roles = make_roles(fake_llm, [])
    fake_llm.enqueue(Answer(json.dumps(PROPOSAL_JSON)))
    rejected = RejectedMotivation(name="scaled-identity", motivation="scaling helps because reasons")

    roles.propose(ResearcherContext(task=TASK, parent=PARENT, rejected=[rejected]))

    assert "scaling helps because reasons" in fake_llm.requests[0].messages[1]["content"]


def test_an_unusable_analysis_is_a_structured_failure(fake_llm: FakeLLMServer) -> None:
    roles = make_roles(fake_llm, [])
    fake_llm.enqueue(Answer('{"summary": ""}'), Answer("It went fine."))
    with pytest.raises(StructuredOutputError, match="analyst gave no valid Analysis"):
        roles.analyze(AnalystContext(task=TASK, experiment=PARENT, diff=""))


def test_concurrent_roles_each_get_their_own_script(fake_llm: FakeLLMServer) -> None:
    roles = make_roles(fake_llm, [])
    fake_llm.enqueue(*[Answer(json.dumps(PROPOSAL_JSON))] * 4, role="researcher")
    fake_llm.enqueue(*[Answer('{"summary": "fine"}')] * 4, role="analyst")
    results: list[object] = []

    def research() -> None:
        results.append(roles.propose(ResearcherContext(task=TASK)))

    def analyse() -> None:
        results.append(roles.analyze(AnalystContext(task=TASK, experiment=PARENT, diff="")))

    threads = [threading.Thread(target=job) for job in (research, analyse) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(type(r).__name__ for r in results) == ["Analysis"] * 4 + ["Proposal"] * 4
    assert len(fake_llm.requests) == 8 and fake_llm.pending() == 0


def test_judge_weight_favours_novelty_and_penalises_complexity() -> None:
    weights = JudgeWeights(novelty=0.2, complexity=0.1)
    assert judge_weight(JudgeScores(novelty=10, complexity=1), weights) == pytest.approx(1.3)
    assert judge_weight(JudgeScores(novelty=1, complexity=10), weights) == pytest.approx(0.7)
    assert judge_weight(JudgeScores(novelty=7, complexity=7), JudgeWeights()) == 1.0  # off by default
    with pytest.raises(ValueError):
        JudgeWeights(novelty=0.9)


def test_experiment_brief_summarises_an_eval_json() -> None:
    result = EvalResult(
        status=Status.INVALID, reason="causality failed", task="mqar", budget="tiny", device="cpu", seed=0,
        candidate_hash="h", checks=[CheckResult("forward", True), CheckResult("causality", False, "leaks at t=3")],
        metrics={"accuracy": 0.123456789, "accuracy_by_length": {"64": 0.5, "128": 0.25}},
        loss_curve=[(0, 5.0), (100, 2.3456789)], parameters=12345,
    )
    experiment = Experiment(id="e0004", run="r", name="leaky", code="x", status="invalid", reason="causality failed",
                            metrics=result.to_dict(), fitness=Fitness(value=-0.5),
                            analysis={"summary": "It leaked.", "lessons": ["mask the conv"]})

    brief = ExperimentBrief.from_experiment(experiment)

    assert brief.metrics == {
        "accuracy": 0.1235, "accuracy_by_length": {"64": 0.5, "128": 0.25}, "parameters": 12345,
        "final_train_loss": 2.346, "train_steps": 100, "failed_checks": ["causality: leaks at t=3"],
    }
    assert brief.fitness == -0.5
    assert brief.analysis == "It leaked.\n- mask the conv"
    assert summarize_metrics({}) == {}
