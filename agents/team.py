"""The roles a run needs, as interfaces with an offline and an LLM implementation each.

Steps (`agents.steps`) talk only to these interfaces, so the loop is the same whether
proposals come from the offline design space or from a language model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agents.context import CheckFailure, RejectedMotivation
from knowledge.records import Experiment

if TYPE_CHECKING:
    from agents.lab import Lab


@dataclass
class ProposalDraft:
    name: str
    motivation: str
    plan: str
    proposer: str
    genome: dict[str, Any] | None = None
    parent_id: str | None = None        # set when the researcher varied another experiment than the one offered
    reference_ids: list[str] | None = None


class Researcher(Protocol):
    uses_novelty_gate: bool

    def propose(self, lab: "Lab", exp: Experiment, parent: Experiment, references: list[Experiment],
                rejected: list[RejectedMotivation], ideas: list[str]) -> ProposalDraft: ...


class Coder(Protocol):
    needs_smoke_checks: bool

    def write(self, lab: "Lab", exp: Experiment, parent: Experiment | None) -> str: ...

    def repair(self, lab: "Lab", exp: Experiment, code: str, failure: CheckFailure,
               attempt: int) -> str | None: ...


class Analyst(Protocol):
    def analyze(self, lab: "Lab", exp: Experiment, parent: Experiment | None, siblings: list[Experiment],
                baseline: Experiment | None) -> dict[str, Any]: ...


@dataclass
class Team:
    researcher: Researcher
    coder: Coder
    analyst: Analyst
    reference_analyst: Analyst  # references get factual notes only: no LLM spend on hand-written baselines
    task_baseline: str     # the reference every fitness is measured against
    task_ceiling: str = "softmax_attention"  # the quality ceiling, for flagging implausible results
