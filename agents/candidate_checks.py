"""Checks a freshly written candidate before it is trained: the static screen in this process,
then the evaluator's checks in the sandbox at the smoke budget. A failure comes back as a
`CheckFailure` that the coder's repair prompt can act on.
"""
from __future__ import annotations

from dataclasses import dataclass

from agents.context import CheckFailure
from agents.lab import Lab
from evaluator.families.mixer import ALLOWED_IMPORTS
from sandbox.screen import screen_source

SMOKE_BUDGET = "smoke"


@dataclass(frozen=True)
class Rejection:
    status: str             # the evaluator status the candidate earned, e.g. "invalid", "leaky"
    failure: CheckFailure   # what the repair prompt shows


def check_candidate(lab: Lab, exp_id: str, code: str, smoke: bool) -> Rejection | None:
    report = screen_source(code, ALLOWED_IMPORTS)
    if not report.passed:
        line = report.problems[0].line if report.problems else None
        return Rejection("invalid", CheckFailure(check="static screen", reason=report.reason, line=line))
    if not smoke:
        return None
    work = lab.experiment_dir(exp_id)
    path = work / "smoke_candidate.py"
    path.write_text(code)
    result = lab.evaluate(path, SMOKE_BUDGET, lab.config.seed, work / "smoke")
    if result.ok:
        return None
    failed = next((c.name for c in result.checks if not c.passed), result.status.value)
    return Rejection(result.status.value, CheckFailure(check=failed, reason=result.reason))
