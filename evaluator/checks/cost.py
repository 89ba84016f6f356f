"""(6) Complexity over every length that is used: training, scoring, latency and the long ones.

Counted work (measure.count_forward_work) at the long lengths gives the exponent; at every
measured length above CHUNK_LIMIT, an op output with two length-sized dimensions (a T x T score
or mask matrix) is refused for a sub-quadratic task, naming the candidate's line, so a mixer
cannot be quadratic at the lengths it is trained and scored at and linear beyond them. It is
looked for at batch 1 and at the training batch size. What the square rule cannot see (a mixer
that registers tensors sized like the lengths in use, so that its score matrix passes as
"length by width") the length switch can: at every check length and the training batch, the
outputs must be those of the same inputs at the start of the shortest fitted length at batch 1,
so the algorithm whose cost was fitted is the one that trains.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from evaluator.backbone import MixerFactory
from evaluator.budgets import Budget
from evaluator.candidate_loader import blame_candidate, candidate_line
from evaluator.checks.common import CHUNK_LIMIT, Change, check_lengths, fail, first_change, precision_for, timed
from evaluator.checks.leaks import unit_rows
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


def length_switch(mixer: nn.Module, budget: Budget, device: torch.device) -> tuple[int, int, Change] | None:
    """(check length, long length, first change) where the outputs at a check length and the training batch differ
    from those of the same inputs at the start of the shortest complexity length at batch 1; None when they agree.

    A causal mixer computes the same function of a prefix whatever follows it and whatever shares its batch.
    In float32 on every device, judged at the bf16 tolerance: other lengths and batch sizes change how the work
    is blocked and padded, and so the round-off (which bf16 would compound over a recurrence), while another
    algorithm changes the outputs by far more."""
    tolerance = precision_for(device, bf16=True)
    long = min(budget.complexity_lengths)
    generator = torch.Generator().manual_seed(0)
    start = unit_rows((1, long, budget.d_model), generator, device)
    with torch.no_grad():
        torch.manual_seed(0)
        reference = mixer(start)
        for length in check_lengths(budget):
            n = min(length, long)
            batch = unit_rows((budget.batch_size, n, budget.d_model), generator, device)
            batch[0] = start[0, :n]
            torch.manual_seed(0)
            every_position = torch.ones(1, n, dtype=torch.bool, device=device)
            change = first_change(reference[:, :n], mixer(batch)[:1], every_position, tolerance)
            if change is not None:
                return length, long, change
    return None


def _switch_reason(length: int, long: int, batch: int, change: Change) -> str:
    return (f"the forward computes another function at T={length}, batch {batch} than at T={long}, batch 1: the "
            f"output at position {change.position} changed by {change.relative:.2g} of its size when the same "
            f"inputs started a longer sequence alone. A causal mixer's outputs on the first positions cannot "
            f"depend on how long the sequence is or what shares the batch, and its cost is measured from "
            f"T={long} up: use one algorithm at every length and batch size")


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
        with blame_candidate(candidate, "forward at a check length and at a long one"):
            switch = length_switch(mixer, budget, device)
        if switch:
            length, long, change = switch
            return fail("complexity", Status.LEAKY, _switch_reason(length, long, budget.batch_size, change),
                        **details, length=length, long_length=long, position=change.position)
        return CheckResult("complexity", True, "", details)
    return timed("complexity", run)
