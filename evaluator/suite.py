"""Suite fitness: a candidate judged on several tasks and on cost at once. Pure functions.

Each task's headline metric is put on one scale, 0 at the run's baseline and 1 at the run's
ceiling (softmax attention), both measured in the same run on the same hardware, so tasks with
different units can be averaged and "how much of the gap to attention did it close" reads the
same everywhere. Efficiency is the log2 ratio to the baseline of training throughput and of
inference latency at the longest measured length: +1 means twice as fast. Fitness is
quality_weight * mean(task scores, weighted) + efficiency_weight * efficiency; the baseline scores 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

# headline metric and its direction (+1: higher is better)
HEADLINES: dict[str, tuple[str, int]] = {"mqar": ("accuracy", 1), "bytelm": ("val_bpb", -1)}
# The smallest baseline-to-ceiling gap used as the scale: when the ceiling does not clearly lead
# (bytelm at a short budget), dividing by a tiny or negative gap would blow scores up or flip them.
MIN_SPAN: dict[str, float] = {"mqar": 0.05, "bytelm": 0.05}


@dataclass(frozen=True)
class SuiteWeights:
    tasks: Mapping[str, float]          # task -> weight of its normalised score
    quality: float = 1.0
    efficiency: float = 0.1


@dataclass(frozen=True)
class SuiteScore:
    value: float
    quality: float
    efficiency: float
    per_task: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def headline(task: str, metrics: Mapping[str, Any]) -> float:
    try:
        key, _ = HEADLINES[task]
    except KeyError:
        raise ValueError(f"no headline metric for task {task!r}; known: {', '.join(HEADLINES)}") from None
    value = metrics.get(key)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise KeyError(f"task {task!r} needs a finite metric {key!r}; got {value!r}")
    return float(value)


def task_score(task: str, metrics: Mapping[str, Any], baseline: Mapping[str, Any],
               ceiling: Mapping[str, Any] | None) -> float:
    """0 at the baseline, 1 at the ceiling, linear in the headline metric (the gap at least MIN_SPAN)."""
    _, sign = HEADLINES[task]
    base = headline(task, baseline)
    span = sign * (headline(task, ceiling) - base) if ceiling is not None else 0.0
    return sign * (headline(task, metrics) - base) / max(span, MIN_SPAN[task])


def _longest_latency(result: Mapping[str, Any]) -> tuple[int, float] | None:
    latencies = result.get("inference_latency_ms") or {}
    found = [(int(k), float(v)) for k, v in latencies.items()
             if str(k).isdigit() and isinstance(v, (int, float)) and v > 0 and math.isfinite(v)]
    return max(found) if found else None


def efficiency(result: Mapping[str, Any], baseline: Mapping[str, Any]) -> float | None:
    """Mean of log2(tokens/s over the baseline's) and log2(baseline's latency over this one's) at the
    longest length both measured; None when either figure is missing (a failed measurement)."""
    tps, base_tps = result.get("train_tokens_per_second"), baseline.get("train_tokens_per_second")
    mine, theirs = _longest_latency(result), _longest_latency(baseline)
    if not tps or not base_tps or mine is None or theirs is None or mine[0] != theirs[0]:
        return None
    return 0.5 * math.log2(tps / base_tps) + 0.5 * math.log2(theirs[1] / mine[1])


def suite_score(results: Mapping[str, Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]],
                ceilings: Mapping[str, Mapping[str, Any] | None], weights: SuiteWeights) -> SuiteScore:
    """`results`, `baselines`, `ceilings`: task -> eval.json content (metrics under "metrics")."""
    missing = sorted(set(weights.tasks) - set(results))
    if missing:
        raise KeyError(f"suite fitness needs a result for every task; missing {missing}")
    per_task, effs, notes = {}, [], []
    for task in weights.tasks:
        ceiling = ceilings.get(task)
        per_task[task] = task_score(task, results[task]["metrics"], baselines[task]["metrics"],
                                    ceiling["metrics"] if ceiling else None)
        if ceiling is None:
            notes.append(f"{task}: no ceiling measured yet, scaled by the minimum gap {MIN_SPAN[task]}")
        eff = efficiency(results[task], baselines[task])
        if eff is None:
            notes.append(f"{task}: no throughput or latency to compare; efficiency counted as the baseline's")
        effs.append(eff or 0.0)
    total = sum(weights.tasks.values())
    quality = sum(weights.tasks[t] * per_task[t] for t in weights.tasks) / total if total else 0.0
    eff_mean = sum(effs) / len(effs) if effs else 0.0
    return SuiteScore(weights.quality * quality + weights.efficiency * eff_mean, quality, eff_mean, per_task,
                      tuple(notes))


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Ids of the points (id, quality, cost) that no other point beats on both: higher quality and
    lower cost, at least as good on one and strictly better on the other. In input order."""
    front = []
    for pid, quality, cost in points:
        dominated = any((q >= quality and c <= cost) and (q > quality or c < cost) for _, q, c in points)
        if not dominated:
            front.append(pid)
    return front
