"""Human-readable summaries of records for the terminal."""
from __future__ import annotations

from evaluator.records import EvalResult


def _format_metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format_metric(v)}" for k, v in value.items())
    return str(value)


def eval_summary(result: EvalResult) -> str:
    """A few lines a person reads after `archlab eval`: verdict first, then the figures."""
    lines = [f"status: {result.status.value}" + (f" — {result.reason}" if result.reason else "")]
    lines.append(f"task: {result.task}  budget: {result.budget}  device: {result.device}  seed: {result.seed}")
    for check in result.checks:
        mark = "pass" if check.passed else "FAIL"
        lines.append(f"  [{mark}] {check.name}" + (f": {check.reason}" if check.reason and not check.passed else ""))
    for key, value in result.metrics.items():
        lines.append(f"  {key}: {_format_metric(value)}")
    if result.parameters is not None:
        lines.append(f"  parameters: {result.parameters:,}")
    if result.train_tokens_per_second:
        lines.append(f"  training tokens/s: {result.train_tokens_per_second:,.0f}")
    if result.inference_latency_ms:
        lines.append(f"  inference latency (ms): {_format_metric(result.inference_latency_ms)}")
    if result.peak_memory_bytes:
        lines.append(f"  peak memory: {result.peak_memory_bytes / 2**20:.0f} MiB")
    lines.append(f"  isolation: {result.isolation}")
    return "\n".join(lines)
