"""Intervals, the "beats" verdict and rank correlations: pure functions, stdlib only.

A lab that reports "better than the best reference" from one seed reports noise. Every claim goes
through `beats`, which says yes only when the 95% interval of the difference lies above zero, and
says why not otherwise. Rank correlations (Kendall's tau-b, Spearman's rho) measure whether a
yardstick orders the same things the same way across seeds, rungs or proxies.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

# Two-sided 95% quantiles of Student's t by degrees of freedom; past 30 the normal's 1.96.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_quantile(df: float) -> float:
    """Student's t 97.5% quantile for `df` degrees of freedom (rounded down: conservative)."""
    if df < 1:
        return math.inf
    whole = int(df)
    return _T975[whole - 1] if whole <= len(_T975) else 1.96


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its standard error and 95% interval (infinite with one seed)."""

    mean: float
    stderr: float
    seeds: int

    @property
    def half_width(self) -> float:
        return t_quantile(self.seeds - 1) * self.stderr if self.seeds > 1 else math.inf

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def describe(self, digits: int = 4) -> str:
        if self.seeds < 2:
            return f"{self.mean:+.{digits}f} (1 seed: no interval)"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] ({self.seeds} seeds)"


def interval(values: Sequence[float]) -> Interval:
    if not values or any(not math.isfinite(v) for v in values):
        raise ValueError(f"an interval needs finite values, got {list(values)}")
    stderr = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return Interval(statistics.fmean(values), stderr, len(values))


@dataclass(frozen=True)
class Verdict:
    beats: bool
    difference: Interval   # a minus b; its seeds are the smaller of the two (Welch's df, conservatively)
    reason: str


def beats(a: Interval, b: Interval) -> Verdict:
    """Does `a` beat `b`? Only when the 95% interval of a - b lies wholly above zero.

    Both need two seeds or more: one seed has no spread, and no claim is made from it.
    """
    seeds = min(a.seeds, b.seeds)
    difference = Interval(a.mean - b.mean, math.hypot(a.stderr, b.stderr), seeds)
    if seeds < 2:
        return Verdict(False, difference, f"not claimed: {seeds} seed on one side; run 2 or more seeds on both")
    if difference.low > 0:
        return Verdict(True, difference, f"beats it: the difference {difference.describe()} excludes zero")
    return Verdict(False, difference, f"not shown: the difference {difference.describe()} includes zero or less")


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _check_pairs(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"rank correlation needs paired values, got {len(x)} and {len(y)}")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties counted); None with fewer than 3 pairs or a constant side."""
    _check_pairs(x, y)
    n = len(x)
    if n < 3:
        return None
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else None


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson's r of average ranks); None with fewer than 3 pairs or a constant side."""
    _check_pairs(x, y)
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    norm = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / norm if norm else None


def quantile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, interpolating linearly between order statistics."""
    if not values or not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile needs values and 0 <= q <= 1, got {len(values)} values and q={q}")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
