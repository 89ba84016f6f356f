"""Behaviour descriptors of an evaluated experiment, read from its `eval.json` metrics.

Quality-diversity selection bins experiments by what they cost (size, scaling, speed), so two
equally good candidates of different shapes both survive. The archive stores these as columns,
extracted once on write, so selection never parses metrics JSON.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from knowledge.records import Experiment, ExperimentBrief

COMPLEXITY_CHECK = "complexity"
EXPONENT_KEYS = ("exponent", "fitted_exponent", "complexity_exponent")


@dataclass(frozen=True)
class Descriptors:
    log10_params: float | None = None
    complexity_exponent: float | None = None
    latency_ms: float | None = None  # forward latency at the longest measured length


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _exponent(metrics: dict[str, Any]) -> float | None:
    for check in metrics.get("checks") or []:
        if isinstance(check, dict) and check.get("name") == COMPLEXITY_CHECK:
            details = check.get("details") or {}
            for key in EXPONENT_KEYS:
                if (value := _finite(details.get(key))) is not None:
                    return value
    return None


def _longest_latency(metrics: dict[str, Any]) -> float | None:
    latencies = metrics.get("inference_latency_ms") or {}
    if not isinstance(latencies, dict):
        return None
    by_length = []
    for length, ms in latencies.items():
        value = _finite(ms)
        if value is not None and str(length).isdigit():
            by_length.append((int(length), value))
    return max(by_length)[1] if by_length else None


def selection_weight(analysis: dict[str, Any]) -> float:
    """The judge's multiplier on selection (agents.answers.judge_weight), 1 when no judge ran.

    Stored as a column like the descriptors, so parent sampling can weigh it without JSON."""
    judged = analysis.get("judge") if isinstance(analysis, dict) else None
    weight = _finite(judged.get("weight")) if isinstance(judged, dict) else None
    return weight if weight is not None and weight > 0 else 1.0


def descriptors_from_metrics(metrics: dict[str, Any]) -> Descriptors:
    """Missing or malformed figures give None, never an error: old or failed results lack them."""
    params = _finite(metrics.get("parameters"))
    return Descriptors(
        log10_params=math.log10(params) if params and params > 0 else None,
        complexity_exponent=_exponent(metrics),
        latency_ms=_longest_latency(metrics),
    )


def brief_of(exp: Experiment) -> ExperimentBrief:
    """The light record of a full experiment (what `Archive.briefs` returns from columns)."""
    found = descriptors_from_metrics(exp.metrics)
    return ExperimentBrief(
        id=exp.id,
        parent_id=exp.parent_id,
        proposer=exp.proposer,
        stage=exp.stage,
        status=exp.status,
        fitness=exp.fitness.value if exp.fitness else None,
        flagged=bool(exp.fitness and exp.fitness.flagged),
        structure_hash=exp.structure_hash,
        log10_params=found.log10_params,
        complexity_exponent=found.complexity_exponent,
        latency_ms=found.latency_ms,
        selection_weight=selection_weight(exp.analysis),
    )
