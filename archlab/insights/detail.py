"""One experiment in full, and two side by side: what was proposed and why, the code and its
diff against the parent, each check, metrics against the parent's and the baseline's, the
analysis, every LLM call and event."""
from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Any

from archlab.insights.records import Check, Comparison, ExperimentDetail, Metric
from archlab.insights.snapshot import RunSnapshot
from archlab.insights.summary import row_of
from knowledge.records import Event, Experiment, LLMCall

MAX_FILES = 200


def code_diff(old: Experiment, new: Experiment) -> str:
    """The unified diff from `old`'s code to `new`'s ("" when they are the same or one has none)."""
    if not old.code or not new.code:
        return ""
    return "".join(difflib.unified_diff(
        old.code.splitlines(keepends=True), new.code.splitlines(keepends=True),
        fromfile=f"{old.id}/candidate.py ({old.name})", tofile=f"{new.id}/candidate.py ({new.name})"))


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[name] = value
    return flat


def figures(exp: Experiment | None) -> dict[str, Any]:
    """An experiment's task metrics and costs, flat ("accuracy_by_length.64"), in a stable order."""
    if exp is None or not exp.metrics:
        return {}
    metrics = exp.metrics
    flat = _flatten(metrics.get("metrics") or {})
    for key in ("parameters", "train_tokens_per_second"):
        if metrics.get(key) is not None:
            flat[key] = metrics[key]
    if metrics.get("peak_memory_bytes"):
        flat["peak_memory_mib"] = round(metrics["peak_memory_bytes"] / 2**20, 1)
    for length, ms in (metrics.get("inference_latency_ms") or {}).items():
        flat[f"latency_ms.{length}"] = ms
    return flat


def _checks(exp: Experiment) -> tuple[Check, ...]:
    return tuple(Check(name=str(c.get("name", "?")), passed=bool(c.get("passed")), reason=str(c.get("reason", "")),
                       seconds=float(c.get("seconds") or 0.0))
                 for c in exp.metrics.get("checks") or [] if isinstance(c, dict))


def loss_curve(exp: Experiment | None) -> tuple[tuple[int, float], ...]:
    """(step, training loss) of the first seed's training."""
    if exp is None:
        return ()
    return tuple((int(p[0]), float(p[1]) if isinstance(p[1], (int, float)) else math.nan)  # JSON keeps NaN as null
                 for p in exp.metrics.get("loss_curve") or []
                 if isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], (int, float)))


def latency(exp: Experiment | None) -> dict[int, float]:
    """Milliseconds per forward pass by sequence length."""
    if exp is None:
        return {}
    measured = exp.metrics.get("inference_latency_ms") or {}
    return {int(k): float(v) for k, v in measured.items() if str(k).isdigit() and isinstance(v, (int, float))}


def experiment_files(run_dir: Path, exp_id: str) -> tuple[str, ...]:
    """Regular files in the experiment's folder (symbolic links left out), relative to it."""
    folder = run_dir / "experiments" / exp_id
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            path = Path(root) / name
            if not path.is_symlink() and len(found) < MAX_FILES:
                found.append(path.relative_to(folder).as_posix())
    return tuple(found)


def experiment_detail(snapshot: RunSnapshot, exp_id: str, calls: list[LLMCall] = (),
                      events: list[Event] = ()) -> ExperimentDetail:
    """Raises KeyError when the run has no such experiment."""
    exp = snapshot.by_id[exp_id]
    parent = snapshot.by_id.get(exp.parent_id) if exp.parent_id else None
    baseline = snapshot.baseline
    own, of_parent, of_baseline = figures(exp), figures(parent), figures(baseline)
    return ExperimentDetail(
        row=row_of(exp), motivation=exp.motivation, plan=exp.plan, code=exp.code, reason=exp.reason,
        genome=exp.genome, parent=row_of(parent) if parent else None,
        references=tuple(row_of(snapshot.by_id[r]) for r in exp.reference_ids if r in snapshot.by_id),
        children=tuple(row_of(e) for e in snapshot.experiments if e.parent_id == exp.id),
        diff=code_diff(parent, exp) if parent else "", checks=_checks(exp),
        metrics=tuple(Metric(name=k, value=v, parent=of_parent.get(k),
                             baseline=of_baseline.get(k) if baseline is not None and baseline.id != exp.id else None)
                      for k, v in own.items()),
        seeds=tuple(s for s in exp.metrics.get("seeds") or [] if isinstance(s, dict)),
        loss_curve=loss_curve(exp),
        latency_ms=latency(exp), baseline_latency_ms=latency(baseline) if baseline and baseline.id != exp.id else {},
        analysis=exp.analysis, timings=exp.timings, log_tail=str(exp.metrics.get("log_tail", "")),
        isolation=str(exp.metrics.get("isolation", "")), files=experiment_files(snapshot.run_dir, exp.id),
        calls=tuple(calls), events=tuple(events))


def comparison(snapshot: RunSnapshot, a: str, b: str) -> Comparison:
    """Two experiments side by side: every metric either has, and the diff from a's code to b's.
    Raises KeyError when the run has no such experiment."""
    left, right = snapshot.by_id[a], snapshot.by_id[b]
    first, second = figures(left), figures(right)
    names = list(first) + [k for k in second if k not in first]
    return Comparison(a=experiment_detail(snapshot, a), b=experiment_detail(snapshot, b),
                      metrics=tuple((k, first.get(k), second.get(k)) for k in names), diff=code_diff(left, right))
