"""The experiment graph of DESIGN.md §3 as a LangGraph graph, one thread per experiment.

The state carries only the experiment id: every step reads the archive, skips work whose
output is already recorded, and writes its output before returning. That makes each node
idempotent, so after a kill -9 LangGraph can re-run the node that was in flight without
repeating a finished step. The review gate is a graph interrupt.
"""
from __future__ import annotations

from typing import Callable, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from agents.lab import Lab
from agents.review import ReviewDecision, apply_review, pending_decision
from agents.llm.errors import LLMCallFailed, StructuredOutputError
from agents.steps import analyze_step, code_step, evaluate_step, fail, propose_step
from knowledge.records import Stage

NODES = ("propose", "code", "review", "evaluate", "analyze")


class ExperimentState(TypedDict):
    experiment_id: str


# An agent's failure ends the experiment with a reason; anything else is the driver's to record.
AGENT_FAILURES = (StructuredOutputError, LLMCallFailed)


def _node(lab: Lab, name: str, step: Callable[[Lab, str], None]):
    def run(state: ExperimentState) -> dict:
        try:
            step(lab, state["experiment_id"])
        except AGENT_FAILURES as error:
            fail(lab, state["experiment_id"], f"{name} step: {error}")
        return {}
    return run


def _review_node(lab: Lab):
    def review(state: ExperimentState) -> dict:
        exp = lab.archive.get_experiment(state["experiment_id"])
        if exp.stage is Stage.CODED:
            if not lab.config.review:
                lab.update(exp.id, stage=Stage.APPROVED)
                return {}
            lab.update(exp.id, stage=Stage.AWAITING_REVIEW)
            lab.log(exp.id, "review", "waiting for a person's decision")
            if lab.replay is not None and not lab.replay.post_decision(lab, exp.id):
                return {}  # the original run holds no decision here: the experiment failed saying so
        elif exp.stage is not Stage.AWAITING_REVIEW and pending_decision(lab, exp.id) is None:
            return {}  # decided and applied before a kill -9 cut the node short: the router moves on
        answer = interrupt({"experiment_id": exp.id, "name": exp.name})
        apply_review(lab, exp.id, ReviewDecision.model_validate(answer))
        return {}
    return review


def next_node(stage: Stage, has_proposal: bool) -> str:
    """The stage recorded in the archive says what comes next; every step advances it or fails."""
    if stage is Stage.PROPOSED:
        return "code" if has_proposal else "propose"
    return {
        Stage.CODED: "review",
        Stage.AWAITING_REVIEW: "review",
        Stage.APPROVED: "evaluate",
        Stage.EVALUATED: "analyze",
    }.get(stage, END)


def _router(lab: Lab):
    def route(state: ExperimentState) -> str:
        exp = lab.archive.get_experiment(state["experiment_id"])
        return next_node(exp.stage, bool(exp.motivation))
    return route


def build_graph(lab: Lab, checkpointer):
    graph = StateGraph(ExperimentState)
    steps = {"propose": propose_step, "code": code_step, "evaluate": evaluate_step, "analyze": analyze_step}
    for name, step in steps.items():
        graph.add_node(name, _node(lab, name, step))
    graph.add_node("review", _review_node(lab))
    route = _router(lab)
    graph.add_conditional_edges(START, route, [*NODES, END])
    for name in NODES:
        graph.add_conditional_edges(name, route, [*NODES, END])
    return graph.compile(checkpointer=checkpointer)
