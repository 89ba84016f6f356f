"""Every reference passes every check at the smoke budget on both tasks, through the sandbox."""
from __future__ import annotations

import json

import pytest

from evaluator.evaluate import evaluate
from evaluator.records import HARNESS_VERSION, Status
from evaluator.references import list_references

CHECKS = ["screen", "instantiate", "forward", "causality", "batch_independence", "complexity", "trained_causality"]


@pytest.mark.parametrize("task", ["mqar", "bytelm"])
@pytest.mark.parametrize("reference", [ref.name for ref in list_references()])
def test_reference_passes_every_check(tmp_path, reference, task):
    result = evaluate(reference, task, "smoke", out_dir=tmp_path, threads=1)
    assert result.status is Status.OK, result.reason + "\n" + result.log_tail
    assert [c.name for c in result.checks] == CHECKS and all(c.passed for c in result.checks)
    complexity = result.checks[CHECKS.index("complexity")]
    assert complexity.details["exempt"] == (reference == "softmax_attention")
    metric = "accuracy" if task == "mqar" else "val_bpb"
    assert result.metrics[metric] == result.metrics[metric]  # finite, not NaN
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["harness_version"] == HARNESS_VERSION and saved["candidate_hash"] == result.candidate_hash
    assert saved["budget_spec"]["name"] == "smoke" and saved["isolation"]
