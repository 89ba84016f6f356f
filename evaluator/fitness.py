"""Fitness: one scalar for selection, relative to the task's baseline measured in the same run.

Positive means better than the baseline. Pure functions of metrics, so the archive can
recompute fitness from stored `eval.json` files at any time.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

IMPLAUSIBLE_BPB_MARGIN = 0.5       # bits per byte below the quality ceiling that no candidate should reach
IMPLAUSIBLE_ACCURACY_GAP = 0.5     # recall above the ceiling's by this much, at a length it finds hard


def _metric(metrics: dict[str, Any], key: str, task: str) -> float:
    if key not in metrics or not isinstance(metrics[key], (int, float)):
        raise KeyError(f"task {task!r} fitness needs metric {key!r}; got {sorted(metrics)}")
    return float(metrics[key])


def fitness(task: str, metrics: dict[str, Any], baseline_metrics: dict[str, Any]) -> float:
    """mqar: accuracy minus the baseline's; bytelm: the baseline's bits per byte minus the candidate's."""
    if task == "mqar":
        return _metric(metrics, "accuracy", task) - _metric(baseline_metrics, "accuracy", task)
    if task == "bytelm":
        return _metric(baseline_metrics, "val_bpb", task) - _metric(metrics, "val_bpb", task)
    raise ValueError(f"no fitness defined for task {task!r}; known: mqar, bytelm")


def combine_seeds(values: list[float]) -> tuple[float, float]:
    """(mean, standard error of the mean) over seeds; the error is 0.0 for a single seed."""
    if not values:
        raise ValueError("combine_seeds needs at least one value")
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"combine_seeds got non-finite values {values}")
    mean = statistics.fmean(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, statistics.stdev(values) / math.sqrt(len(values))


def implausible(task: str, metrics: dict[str, Any], ceiling_metrics: dict[str, Any]) -> str:
    """Why a result is too good to believe next to the quality ceiling (softmax attention), or ''."""
    if task == "bytelm":
        bpb, ceiling = _metric(metrics, "val_bpb", task), _metric(ceiling_metrics, "val_bpb", task)
        if bpb < ceiling - IMPLAUSIBLE_BPB_MARGIN:
            return (f"val_bpb {bpb:.3f} is more than {IMPLAUSIBLE_BPB_MARGIN} below the softmax ceiling's "
                    f"{ceiling:.3f}: check for leakage before trusting it")
        return ""
    if task == "mqar":
        mine = metrics.get("accuracy_by_length", {})
        ceiling = ceiling_metrics.get("accuracy_by_length", {})
        for length in sorted(set(mine) & set(ceiling), key=int):
            if mine[length] >= ceiling[length] + IMPLAUSIBLE_ACCURACY_GAP and ceiling[length] < 0.5:
                return (f"recall {mine[length]:.2f} at length {length} where the softmax ceiling gets "
                        f"{ceiling[length]:.2f}: check for leakage before trusting it")
        return ""
    raise ValueError(f"no plausibility rule for task {task!r}; known: mqar, bytelm")
