"""Builds the team for a run: the offline team when no model is configured, the LLM team otherwise."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from agents.config import RunConfig
from agents.context import TaskBrief
from agents.team import Team
from agents.team_offline import OfflineAnalyst, OfflineCoder, OfflineResearcher
from evaluator.families.mixer import contract_text
from evaluator.tasks import get_task
from knowledge.archive import Archive

if TYPE_CHECKING:
    from agents.replay import ReplaySource


def make_team(config: RunConfig, archive: Archive, run: str, stop: threading.Event,
              replay: "ReplaySource | None" = None) -> Team:
    """`stop` is the run's stop event: LLM calls waiting to retry end when it is set. With
    `replay`, answers come from the recorded run, with no network and no key."""
    task = get_task(config.task)
    if config.llm is None:
        return Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), task.baseline, task.ceiling)

    from agents.llm.client import LLMClient
    from agents.roles import Roles
    from agents.team_llm import LLMAnalyst, LLMCoder, LLMResearcher, settle_history

    spend = archive.spend(run)  # a resumed run keeps counting against the same budget
    if replay is not None:
        from agents.llm.replay import ReplayClient

        client: LLMClient = ReplayClient(config.llm, archive, run, replay, spent_usd=spend.usd, calls=spend.calls,
                                         stop=stop, seed=config.seed)
    else:
        client = LLMClient(config.llm, archive.record_llm_call, run, spent_usd=spend.usd, calls=spend.calls,
                           stop=stop, seed=config.seed)
    roles = Roles(client)
    settle_history(roles, archive, run)  # a resumed run's model choices start from what it learned
    brief = TaskBrief(name=task.name, family="mixer", description=task.description, contract=contract_text())
    return Team(LLMResearcher(roles, brief), LLMCoder(roles, brief), LLMAnalyst(roles, brief), OfflineAnalyst(),
                task.baseline, task.ceiling)
