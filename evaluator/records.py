"""Typed records that cross the evaluator's boundary: what goes into `eval.json`.

These are plain dataclasses (stdlib only) so a GPU worker with nothing but torch
and numpy can build them, and the orchestrator can read them back.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

HARNESS_VERSION = "0.1.0"


class Status(str, Enum):
    """Outcome of one evaluation (DESIGN.md §5)."""

    OK = "ok"
    INVALID = "invalid"          # static screen or a functional check failed
    LEAKY = "leaky"              # causality or batch independence violated
    TOO_SLOW = "too_slow"        # measured complexity above the task's limit
    OVER_BUDGET = "over_budget"  # parameters (or another budget figure) exceeded
    TIMEOUT = "timeout"          # wall limit hit; the process group was killed
    OOM = "oom"                  # memory limit hit
    CRASHED = "crashed"          # the worker died or raised outside a check
    DIVERGED = "diverged"        # non-finite or exploding loss during training
    SKIPPED = "skipped"          # not trained: a zero-cost proxy ranked it below the run's gate (no verdict)


@dataclass
class CheckResult:
    """One check of DESIGN.md §5, in order; `reason` is written for a person or an LLM to act on."""

    name: str
    passed: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class EvalResult:
    """The content of `eval.json`."""

    status: Status
    reason: str
    task: str
    budget: str
    device: str
    seed: int
    candidate_hash: str
    harness_version: str = HARNESS_VERSION
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # task metrics, e.g. {"accuracy": .., "accuracy_by_length": {..}}
    loss_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    parameters: int | None = None
    train_tokens_per_second: float | None = None
    inference_latency_ms: dict[str, float] = field(default_factory=dict)  # seq length -> ms per forward
    peak_memory_bytes: int | None = None
    gpu_memory_fraction: float | None = None  # on CUDA: the share of the GPU's memory the worker was capped to
    budget_spec: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    isolation: str = ""
    compilation: dict[str, Any] = field(default_factory=dict)  # torch.compile: setting, compiled, reason (not a metric)
    guards: dict[str, str] = field(default_factory=dict)  # in-process guards of the worker: audit_hook, seccomp
    log_tail: str = ""  # truncated stdout/stderr of the worker, only a log

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalResult":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = Status(values["status"])
        values["checks"] = [CheckResult(**c) for c in values.get("checks", [])]
        values["loss_curve"] = [tuple(p) for p in values.get("loss_curve", [])]
        return cls(**values)
