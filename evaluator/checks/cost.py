"""(6) Complexity over every length that is used: training, scoring, latency and the long ones.

Counted work (measure.count_forward_work) at the long lengths gives the exponent; at every
measured length above CHUNK_LIMIT, an op output with two length-sized dimensions (a T x T score
or mask matrix) is refused for a sub-quadratic task, naming the candidate's line, so a mixer
cannot be quadratic at the lengths it is trained and scored at and linear beyond them. It is
looked for at batch 1 and at the training batch size.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from evaluator.backbone import MixerFactory
from evaluator.budgets import Budget
from evaluator.candidate_loader import blame_candidate, candidate_line
from evaluator.checks.common import CHUNK_LIMIT, check_lengths, fail, timed
from evaluator.measure import (SquareIntermediate, SquareRule, autocast_for, count_forward_work,
                               find_square_intermediate, fit_exponent, time_call)
from evaluator.records import CheckResult, Status

COMPLEXITY_REPEATS = 5


def measured_lengths(budget: Budget) -> list[int]:
    """Training and check lengths, latency lengths and the complexity lengths."""
    return sorted(set(check_lengths(budget)) | set(budget.latency_lengths) | set(budget.complexity_lengths))


def module_widths(mixer: nn.Module, d_model: int) -> frozenset[int]:
    """Sizes that do not grow with the sequence: d_model and every dimension of a parameter or buffer."""
    sizes = {d_model}
    for tensor in [*mixer.parameters(), *mixer.buffers()]:
        sizes.update(tensor.shape)
    return frozenset(sizes)


def _best_forward_seconds(mixer: nn.Module, inputs: dict[int, torch.Tensor], budget: Budget,
                          device: torch.device) -> dict[int, float]:
    """Fastest of a few forwards at each length, round robin; stops at the check's time limit."""
    best: dict[int, float] = {}
    started = time.perf_counter()
    for _ in range(COMPLEXITY_REPEATS):
        for n, x in inputs.items():
            seconds = time_call(lambda: mixer(x), device)
            best[n] = min(best.get(n, seconds), seconds)
            if time.perf_counter() - started > budget.complexity_seconds:
                return best
    return best


def _square_reason(found: SquareIntermediate, length: int, batch: int) -> str:
    where = found.line or "a call the candidate made"
    return (f"{where} builds a length-by-length intermediate ({found.op} -> shape {list(found.shape)}) at "
            f"T={length}, batch {batch}: the task needs sub-quadratic mixing at every length, including the "
            f"training lengths; keep blocks to chunks of at most {CHUNK_LIMIT} positions and carry a state "
            "between chunks (recurrent, chunked or convolutional form)")


def check_complexity(make_mixer: MixerFactory, candidate: Path, budget: Budget, device: torch.device,
                     limit: float, exempt: bool) -> CheckResult:
    """Forward work at growing T fits T ** exponent with exponent <= limit, and no T x T intermediate
    is built at any measured length (unless exempt).

    The exponent is fitted over the lengths from the shortest complexity length up; the measured
    time exponent is reported beside it, and a forward too slow to time within
    `budget.complexity_seconds` fails as well.
    """
    def run() -> CheckResult:
        with blame_candidate(candidate, "Mixer construction"):
            mixer = make_mixer().to(device).eval()
        widths = module_widths(mixer, budget.d_model)
        lengths = measured_lengths(budget)
        shapes = [(1, n) for n in lengths] + [(budget.batch_size, n) for n in check_lengths(budget)]
        work: dict[int, int] = {}
        squares: list[tuple[SquareIntermediate, int, int]] = []
        with torch.no_grad(), autocast_for(device), blame_candidate(candidate, "forward at growing lengths"):
            for batch, n in shapes:
                x = torch.randn(batch, n, budget.d_model, device=device)
                if n > CHUNK_LIMIT and not squares and not exempt:
                    square = find_square_intermediate(mixer, x, SquareRule(n, widths),
                                                      lambda stop: candidate_line(stop, candidate))
                    squares += [(square, n, batch)] if square else []
                if batch == 1:
                    work[n] = count_forward_work(mixer, x)  # also warms up every length
            timed_lengths = list(budget.complexity_lengths)
            inputs = {n: torch.randn(1, n, budget.d_model, device=device) for n in timed_lengths}
            best = _best_forward_seconds(mixer, inputs, budget, device)
        span = f"T = {', '.join(map(str, timed_lengths))}"
        fitted = [n for n in lengths if n >= min(timed_lengths)]
        details = {"lengths": lengths, "work": [work[n] for n in lengths], "fitted_lengths": fitted,
                   "seconds": [best.get(n) for n in timed_lengths], "limit": limit, "exempt": exempt}
        if len(best) < len(timed_lengths):
            slowest = max(best, key=best.get)
            return fail("complexity", Status.TOO_SLOW,
                        f"forward took {best[slowest]:.2f} s at T={slowest}; timing it at {span} did not finish "
                        f"within {budget.complexity_seconds:g} s: avoid Python loops over single positions", **details)
        exponent = fit_exponent(fitted, [work[n] for n in fitted])
        time_exponent = fit_exponent(timed_lengths, [best[n] for n in timed_lengths])
        details.update(exponent=exponent, time_exponent=time_exponent)
        measured = (f"T^{exponent:.2f} over T = {', '.join(map(str, fitted))} "
                    f"(time: T^{time_exponent:.2f} over {span})")
        if exempt:
            return CheckResult("complexity", True, f"exempt (quadratic reference); work grows as {measured}", details)
        if exponent > limit:
            return fail("complexity", Status.TOO_SLOW,
                        f"forward work grows as {measured}, above the limit T^{limit:g}: the task needs "
                        "sub-quadratic mixing; replace the T x T score matrix by a recurrent, chunked or "
                        "convolutional form", **details)
        if squares:
            square, n, batch = squares[0]
            return fail("complexity", Status.TOO_SLOW, _square_reason(square, n, batch), **details, length=n,
                        batch=batch, line=square.line, shape=list(square.shape))
        return CheckResult("complexity", True, "", details)
    return timed("complexity", run)
