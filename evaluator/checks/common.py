"""What the checks share: timing and failure records, the shapes and precision they probe at, and
the per-position comparison that decides whether an output changed.

A change is judged against that position's own output magnitude (the median over its channels,
so one huge channel cannot widen the tolerance) plus a small floor relative to the median output
of the whole batch: one very large value elsewhere cannot hide a small leak here.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch

from evaluator.budgets import Budget
from evaluator.candidate_loader import CandidateError
from evaluator.measure import autocast_for
from evaluator.records import CheckResult, Status

CHUNK_LIMIT = 64  # legit chunked algorithms build C x C blocks with C <= this; padding stays below it


@dataclass(frozen=True)
class Precision:
    """The device and autocast the checks run under, and the tolerance that goes with them."""

    device: torch.device
    bf16: bool
    rtol: float   # relative to the position's own magnitude
    floor: float  # relative to the median magnitude of the whole output

    @property
    def label(self) -> str:
        return "bf16 autocast" if self.bf16 else "float32"

    def autocast(self) -> ContextManager:
        if not self.bf16:
            return nullcontext()
        if self.device.type == "cuda":
            return autocast_for(self.device)
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


def precision_for(device: torch.device, bf16: bool | None = None) -> Precision:
    """What training and scoring use on `device` (bf16 autocast on CUDA); `bf16` forces it (tests on CPU)."""
    bf16 = device.type == "cuda" if bf16 is None else bf16
    return Precision(device, bf16, rtol=2e-2, floor=2e-3) if bf16 else Precision(device, False, rtol=1e-5, floor=1e-6)


def with_float32(precision: Precision) -> list[Precision]:
    """The precisions to probe at: float32 first, on the same device with the tight tolerance (a small leak
    that bf16 round-off would hide), then the training precision when it differs (a leak that switches
    on under bf16 autocast only)."""
    return [precision_for(precision.device, bf16=False), precision] if precision.bf16 else [precision]


def check_lengths(budget: Budget) -> list[int]:
    """Every training length, plus one odd length that is not a power of two (chunk and padding code)."""
    odd = max(budget.seq_lens) * 3 // 4 + 1
    odd += 1 if odd & (odd - 1) == 0 or odd % 2 == 0 else 0
    return sorted(set(budget.seq_lens) | {odd})


def timed(name: str, run: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; candidate code that raised makes it fail as invalid, with the line."""
    start = time.perf_counter()
    try:
        result = run()
    except CandidateError as error:
        result = fail(name, Status.INVALID, error.reason)
    result.seconds = time.perf_counter() - start
    return result


def fail(name: str, status: Status, reason: str, **details: object) -> CheckResult:
    return CheckResult(name, False, reason, {"status": status.value, **details})


def output_problem(x: torch.Tensor, y: object) -> str:
    if not isinstance(y, torch.Tensor):
        return f"forward must return one tensor of shape {list(x.shape)}, but returned a {type(y).__name__}"
    if y.shape != x.shape:
        return (f"forward returned shape {list(y.shape)} for input shape {list(x.shape)}; "
                "the output must have the input's shape [B, T, d_model]")
    if y.dtype != x.dtype:
        return f"forward returned dtype {y.dtype} for input dtype {x.dtype}; cast the output back to x.dtype"
    bad = ~torch.isfinite(y.detach())
    if bad.any():
        batch, position, _ = (int(i) for i in bad.nonzero()[0])
        return (f"forward returned {int(bad.sum())} non-finite values of {y.numel()} "
                f"(first at batch {batch}, position {position}): guard divisions, logs, exps and square roots")
    return ""


@dataclass(frozen=True)
class Change:
    sample: int
    position: int
    change: float
    relative: float  # the change over that position's own magnitude


def first_change(before: torch.Tensor, after: torch.Tensor, judged: torch.Tensor, precision: Precision,
                 cuts: torch.Tensor | None = None) -> Change | None:
    """The earliest judged output that changed beyond tolerance (by position, then the sample's cut), or None.

    before, after: [B, T, C] float; judged: [B, T] bool, the outputs that must not have changed.
    """
    before, after = before.detach().float(), after.detach().float()
    magnitude = before.abs()
    own = magnitude.median(dim=-1).values                       # [B, T]
    floor = precision.floor * float(magnitude.median()) + 1e-30
    excess = (after - before).abs() - precision.rtol * (magnitude + own[..., None]) - floor
    leaking = (excess.amax(dim=-1) > 0) & judged & torch.isfinite(before).all(dim=-1)
    leaking |= judged & ~torch.isfinite(after).all(dim=-1) & torch.isfinite(before).all(dim=-1)
    if not leaking.any():
        return None
    found = leaking.nonzero()
    tie = cuts.to(found.device)[found[:, 0]] if cuts is not None else found[:, 0]
    sample, position = (int(i) for i in found[(found[:, 1] * (int(tie.max()) + 1) + tie).argmin()])
    change = float((after[sample, position] - before[sample, position]).abs().max())
    return Change(sample, position, change, change / (float(own[sample, position]) + floor))
