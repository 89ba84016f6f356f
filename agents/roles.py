"""The LLM roles of DESIGN.md §3: typed context in, typed answer out.

Each call chooses the role's model for the experiment (agents.llm.bandit), renders the
template from prompts/ fitted to that model's token budget (agents.llm.budget, with the
plans of agents.context_trims), asks through the shared client (budget, retries, recording,
with the choice and the trims recorded with the call) and reads the answer: JSON for the
researcher, analyst and judge, plain-text code for the coder.

Failures surface as exceptions the loop records as a failed step: `StructuredOutputError`
(no usable answer after one corrective retry), `LLMCallFailed` (provider errors, or a prompt
that cannot fit: `PromptTooLong`), `BudgetExhausted` (stop starting new work).
"""
from __future__ import annotations

from typing import Any, Callable

from agents.answers import Analysis, JudgeScores, Proposal
from agents.context import AnalystContext, Brief, CoderContext, JudgeContext, RepairContext, ResearcherContext
from agents.context_trims import trims_for
from agents.llm.budget import fit_prompt
from agents.llm.capabilities import count_tokens, json_response_format, prompt_budget
from agents.llm.client import CallOptions, LLMClient
from agents.llm.code_answer import WrittenCode, ask_code
from agents.llm.structured import Model, ask_structured
from agents.prompting import Prompts

TokenCounter = Callable[[str, list[dict[str, Any]]], int]  # (model, messages) -> tokens


class Roles:
    """The researcher, coder, analyst and judge, sharing one client and one prompt directory."""

    def __init__(self, client: LLMClient, prompts: Prompts | None = None, count: TokenCounter = count_tokens) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self._count = count

    def propose(self, context: ResearcherContext, experiment_id: str | None = None) -> Proposal:
        """A new proposal; after a novelty rejection, call again with `context.rejected` filled."""
        return self._ask_json("researcher", "researcher.j2", context, Proposal, experiment_id)

    def write_code(self, context: CoderContext, experiment_id: str | None = None) -> WrittenCode:
        """The candidate file for a proposal: whole, or the parent's file with the coder's edits applied."""
        base = context.parent.code if context.parent is not None else ""
        return self._ask_code("coder.j2", context, base, experiment_id)

    def repair(self, context: RepairContext, experiment_id: str | None = None) -> WrittenCode:
        """The file fixed for a failing check: whole, or `context.code` with the coder's edits applied."""
        return self._ask_code("coder_repair.j2", context, context.code, experiment_id)

    def analyze(self, context: AnalystContext, experiment_id: str | None = None) -> Analysis:
        return self._ask_json("analyst", "analyst.j2", context, Analysis, experiment_id)

    def judge(self, context: JudgeContext, experiment_id: str | None = None) -> JudgeScores:
        """Optional novelty/complexity scores; weigh them with `answers.judge_weight`."""
        return self._ask_json("judge", "judge.j2", context, JudgeScores, experiment_id)

    def _ask_json(self, role: str, template: str, context: Brief, model_cls: type[Model],
                  experiment_id: str | None) -> Model:
        messages, options = self._prepare(role, template, context, experiment_id)
        json_mode = json_response_format(options.model or "", model_cls, self.client.config.json_mode)
        options = CallOptions(options.model, json_mode, options.meta)
        return ask_structured(self.client, role, messages, model_cls, experiment_id, prompts=self.prompts,
                              options=options)

    def _ask_code(self, template: str, context: Brief, base: str, experiment_id: str | None) -> WrittenCode:
        messages, options = self._prepare("coder", template, context, experiment_id)
        return ask_code(self.client, "coder", messages, base, experiment_id, prompts=self.prompts, options=options)

    def _prepare(self, role: str, template: str, context: Brief,
                 experiment_id: str | None) -> tuple[list[dict[str, Any]], CallOptions]:
        """The model for this call, and the prompt fitted to its budget; both recorded with the call."""
        choice = self.client.choose(role, experiment_id)
        budget = prompt_budget(self.client.config, choice.model)
        fitted = fit_prompt(context, lambda c: self.prompts.messages(template, **dict(c)), trims_for(context),
                            lambda messages: self._count(choice.model, messages), budget.tokens,
                            f"{role} on {choice.model}: {budget.explain()}")
        meta = {"choice": choice.as_record(), "prompt": fitted.as_record()}
        return fitted.messages, CallOptions(choice.model, None, meta)
