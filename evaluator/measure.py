"""Measurements of cost: time of a forward, counted work, latency, peak memory, power-law fits.

Timings synchronise the device around the timed call and keep the minimum (or median) of
repeats, since a shared machine only ever adds noise on top of the true cost. Counted work
(`count_forward_work`) is the machine-independent measure of how a forward scales: on a
small CPU model, cache-size steps and kernel switches can make a linear mixer's time look
like T^1.6 between two lengths, while its counted work stays at T^1.0.
"""
from __future__ import annotations

import math
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_for(device: torch.device) -> ContextManager:
    """bf16 autocast on CUDA, nothing on CPU (bf16 matmuls are slow there and change the numbers)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call takes, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def fit_exponent(lengths: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(length): time ~ length ** slope."""
    if len(lengths) < 2:
        raise ValueError("fitting an exponent needs at least two lengths")
    xs = [math.log(n) for n in lengths]
    ys = [math.log(max(s, 1e-9)) for s in seconds]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    return covariance / sum((x - mean_x) ** 2 for x in xs)


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


MATMULS = frozenset({"matmul", "mm", "bmm", "linear", "mv", "dot", "__matmul__"})
MATMULS_WITH_BIAS_FIRST = frozenset({"addmm", "baddbmm", "addbmm", "addmv"})


def _einsum_flops(equation: str, operands: list[torch.Tensor], out: torch.Tensor) -> int:
    """2 x output elements x product of the contracted index sizes (explicit `->` form)."""
    inputs, _, output = equation.replace(" ", "").partition("->")
    sizes: dict[str, int] = {}
    for subscripts, operand in zip(inputs.split(","), operands):
        letters = subscripts.replace("...", "")
        named = operand.shape[operand.dim() - len(letters):] if "..." in subscripts else operand.shape
        sizes.update(zip(letters, named))
    contracted = math.prod(size for letter, size in sizes.items() if letter not in output)
    return 2 * out.numel() * contracted


def _flops(name: str, args: tuple, out: object) -> int:
    """Multiply-adds of the matmul-like calls, whose cost is not visible in their output size."""
    if not isinstance(out, torch.Tensor):
        return 0
    if name in MATMULS and isinstance(args[0], torch.Tensor):
        return 2 * out.numel() * args[0].shape[-1]
    if name in MATMULS_WITH_BIAS_FIRST:
        return 2 * out.numel() * args[1].shape[-1]
    if name.startswith("conv"):
        return 2 * max(out.numel(), args[0].numel()) * args[1][0].numel()
    if name == "einsum":
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
        return _einsum_flops(args[0], operands, out)
    if name == "scaled_dot_product_attention":  # the T x T scores live inside one fused call
        query, key = args[0], args[1]
        return 4 * math.prod(query.shape[:-1]) * key.shape[-2] * query.shape[-1]
    return 0


@dataclass(frozen=True)
class SquareIntermediate:
    """An op output with two length-sized dimensions: the sign of a T x T score or mask matrix."""

    op: str
    shape: tuple[int, ...]
    line: str = ""  # 'line N: `source`' of the candidate, '' if it could not be found


@dataclass(frozen=True)
class SquareRule:
    """At length T, a dimension >= T that is not one of the module's widths (d_model, parameter and
    buffer sizes) stands for the sequence; two of them in one output make it length-by-length."""

    length: int
    widths: frozenset[int]

    def offends(self, name: str, args: tuple, out: torch.Tensor) -> bool:
        if name == "scaled_dot_product_attention":  # the T x T scores live inside one fused call
            return min(args[0].shape[-2], args[1].shape[-2]) >= self.length
        return sum(1 for d in out.shape if d >= self.length and d not in self.widths) >= 2


class _SquareFound(BaseException):
    """Raised inside the forward at the offending op, so that its traceback names the candidate's line
    once it has left candidate code (the runtime guard refuses frame access while candidate code runs).
    A BaseException, so that a candidate's `except Exception` does not swallow it."""

class _WorkCounter(TorchFunctionMode):
    """Counts, for every torch call that makes a new tensor, the elements it reads and writes plus
    the multiply-adds of matmul-like calls; with a SquareRule, stops at the first output that is
    length-by-length.

    Views, in-place updates and property reads are skipped: they move no data, and counting the
    whole tensor behind `x[:, i]` in a loop over chunks would fake a quadratic cost.
    """

    def __init__(self, rule: SquareRule | None = None) -> None:
        super().__init__()
        self.work = 0
        self.rule = rule
        self.square: SquareIntermediate | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outputs, inputs = list(_tensors(out)), list(_tensors((args, kwargs)))
        storages = {t.untyped_storage().data_ptr() for t in inputs}
        if outputs and not any(o.untyped_storage().data_ptr() in storages for o in outputs):
            name = getattr(func, "__name__", "")
            self.work += sum(t.numel() for t in inputs) + sum(t.numel() for t in outputs)
            self.work += _flops(name, args, out)
            if self.rule and self.square is None and self.rule.offends(name, args, outputs[0]):
                self.square = SquareIntermediate(name, tuple(outputs[0].shape))
                raise _SquareFound()
        return out


@torch.no_grad()
def count_forward_work(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> int:
    """Elements moved plus matmul multiply-adds over all torch calls of one fn(x): a cost model
    that does not depend on the machine, its caches or its load."""
    with _WorkCounter() as counter:
        fn(x)
    return counter.work


@torch.no_grad()
def find_square_intermediate(fn: Callable[[torch.Tensor], object], x: torch.Tensor, rule: SquareRule,
                             locate: Callable[[BaseException], str]) -> SquareIntermediate | None:
    """The first length-by-length intermediate of fn(x) by `rule`, or None; the forward stops there.

    `locate` turns the stopping exception into the candidate's line (e.g. candidate_line).
    """
    try:
        with _WorkCounter(rule) as counter:
            fn(x)
    except _SquareFound as stop:
        return SquareIntermediate(counter.square.op, counter.square.shape, locate(stop))
    return counter.square  # found, but the candidate swallowed the stop: no line


@torch.no_grad()
def forward_latency_ms(model: nn.Module, vocab_size: int, lengths: tuple[int, ...], repeats: int,
                       device: torch.device) -> dict[str, float]:
    """Median milliseconds of one forward of batch 1 at each length (after one warm-up call)."""
    model.eval()
    latency = {}
    for length in lengths:
        tokens = torch.randint(vocab_size, (1, length), device=device)
        with autocast_for(device):
            model(tokens)
            times = [time_call(lambda: model(tokens), device) for _ in range(repeats)]
        latency[str(length)] = 1000 * statistics.median(times)
    return latency


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak GPU memory allocated by tensors on CUDA; peak resident memory of the process on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB, macOS bytes
