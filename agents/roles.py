"""The LLM roles of DESIGN.md §3: typed context in, typed answer out.

Each role renders its template from prompts/, asks through the shared client (budget,
retries, recording) and validates the answer. Failures surface as exceptions the loop
records as a failed step: `StructuredOutputError` (bad answer after one corrective retry),
`LLMCallFailed` (provider errors), `BudgetExhausted` (stop starting new work).
"""
from __future__ import annotations

from typing import Any

from agents.answers import Analysis, CandidateCode, JudgeScores, Proposal, python_fence_as_full_file
from agents.context import AnalystContext, Brief, CoderContext, JudgeContext, RepairContext, ResearcherContext
from agents.llm import LLMClient
from agents.prompting import Prompts
from agents.structured import Model, Salvage, ask_structured


class Roles:
    """The researcher, coder, analyst and judge, sharing one client and one prompt directory."""

    def __init__(self, client: LLMClient, prompts: Prompts | None = None) -> None:
        self.client = client
        self.prompts = prompts or Prompts()

    def propose(self, context: ResearcherContext, experiment_id: str | None = None) -> Proposal:
        """A new proposal; after a novelty rejection, call again with `context.rejected` filled."""
        return self._ask("researcher", "researcher.j2", context, Proposal, experiment_id)

    def write_code(self, context: CoderContext, experiment_id: str | None = None) -> CandidateCode:
        """The candidate for a proposal; `answer.apply_to(parent code)` gives the file."""
        return self._ask("coder", "coder.j2", context, CandidateCode, experiment_id, python_fence_as_full_file)

    def repair(self, context: RepairContext, experiment_id: str | None = None) -> CandidateCode:
        """A fix for a failing check; `answer.apply_to(context.code)` gives the file."""
        return self._ask("coder", "coder_repair.j2", context, CandidateCode, experiment_id, python_fence_as_full_file)

    def analyze(self, context: AnalystContext, experiment_id: str | None = None) -> Analysis:
        return self._ask("analyst", "analyst.j2", context, Analysis, experiment_id)

    def judge(self, context: JudgeContext, experiment_id: str | None = None) -> JudgeScores:
        """Optional novelty/complexity scores; weigh them with `answers.judge_weight`."""
        return self._ask("judge", "judge.j2", context, JudgeScores, experiment_id)

    def _ask(
        self,
        role: str,
        template: str,
        context: Brief,
        model_cls: type[Model],
        experiment_id: str | None,
        salvage: Salvage | None = None,
    ) -> Model:
        fields: dict[str, Any] = dict(context)  # top-level fields, nested models kept as models
        messages = self.prompts.messages(template, **fields)
        return ask_structured(
            self.client, role, messages, model_cls, experiment_id, prompts=self.prompts, salvage=salvage
        )
