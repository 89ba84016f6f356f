"""Hostile candidates that passed the old checks, and unusual valid ones the old checks refused.

Class 3, leaks at shapes, modes or times the checks did not look at; class 4, cost hidden from
parameters() or from the lengths complexity was measured at; class 5, valid mixers that were
rejected. Each is classified end to end through `evaluate()` at the smoke budget, asserting the
status and that the reason names what to fix; the few settings the smoke budget on CPU cannot
reach (bf16 autocast, training lengths above the chunk limit) run the checks in-process.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluator.budgets import get_budget
from evaluator.candidate_loader import load_mixer_class
from evaluator.checks import check_causality, check_complexity, precision_for
from evaluator.evaluate import evaluate
from evaluator.records import EvalResult, Status

CANDIDATES = Path(__file__).with_name("candidates")
CPU = torch.device("cpu")


def run(name: str, tmp_path: Path) -> EvalResult:
    return evaluate(CANDIDATES / name, "mqar", "smoke", out_dir=tmp_path / "out", threads=1)


def factory(path: Path, budget):
    mixer_class = load_mixer_class(path)
    return lambda: mixer_class(budget.d_model, budget.n_heads)


@pytest.mark.parametrize("name, expected", [
    ("leak_at_batch_size.py", "T=32, batch 16"),
    ("leak_at_long_length.py", "train mode with gradients, T=64, batch 16"),
    ("leak_odd_length.py", "T=49, batch 16"),
    ("leak_train_with_grad.py", "train mode with gradients"),
    ("leak_next_to_huge.py", "output at position 0 changed"),
])
def test_leaks_at_the_shapes_and_modes_training_uses_are_leaky(tmp_path, name, expected):
    result = run(name, tmp_path)
    assert result.status is Status.LEAKY, result.reason
    assert "reads the future" in result.reason and expected in result.reason
    assert [c.name for c in result.checks][-1] == "causality"


@pytest.mark.parametrize("name, where", [
    ("leak_after_calls.py", "`mixer.calls`"),
    ("leak_global_counter.py", "`<candidate global> SEEN['calls']`"),
])
def test_a_counter_that_opens_a_leak_later_is_state_that_keeps_changing(tmp_path, name, where):
    result = run(name, tmp_path)
    assert result.status is Status.LEAKY
    assert "state changed between two identical calls" in result.reason and where in result.reason


def test_a_leak_only_under_bf16_autocast_is_caught_under_the_precision_training_uses():
    budget = get_budget("mqar", "smoke")
    path = CANDIDATES / "leak_under_bf16.py"
    assert check_causality(factory(path, budget), path, budget, 0, precision_for(CPU)).passed  # float32 misses it
    result = check_causality(factory(path, budget), path, budget, 0, precision_for(CPU, bf16=True))
    assert not result.passed and result.details["status"] == "leaky"
    assert "bf16 autocast" in result.reason and "reads the future" in result.reason


def test_a_small_leak_that_bf16_round_off_would_hide_is_caught_by_the_float32_probe():
    """Under bf16 autocast the tolerance must be loose (round-off of a few 1e-3), so the checks also probe in
    float32 on the same device: a 1e-4 leak passes the bf16 comparison alone and is caught there."""
    budget = get_budget("mqar", "smoke")
    path = CANDIDATES / "leak_next_to_huge.py"
    result = check_causality(factory(path, budget), path, budget, 0, precision_for(CPU, bf16=True))
    assert not result.passed and result.details["status"] == "leaky"
    assert "float32" in result.reason and "reads the future" in result.reason


@pytest.mark.parametrize("name, where", [
    ("cost_list_memory.py", "`blocks.0.mixer.memory[0]` (shape [30000, 32], 960,000 elements, changed during"),
    ("cost_dict_state.py", "`blocks.0.mixer.state['keys']` (shape [4096, 32], 131,072 elements, requires grad)"),
])
def test_trainable_state_outside_parameters_counts_against_the_budget(tmp_path, name, where):
    result = run(name, tmp_path)
    assert result.status is Status.OVER_BUDGET
    assert where in result.reason and "above the budget of 200,000" in result.reason


@pytest.mark.parametrize("name, line", [
    ("cost_quadratic_short.py", "line 17: `scores = (q @ k.transpose(1, 2)) / q.shape[-1] ** 0.5`"),
    ("cost_mask_short.py", "line 14: `weights = torch.ones(length, length, device=x.device).tril()`"),
])
def test_a_length_by_length_intermediate_at_lengths_in_use_is_too_slow_with_its_line(tmp_path, name, line):
    result = run(name, tmp_path)
    assert result.status is Status.TOO_SLOW
    assert line in result.reason and "length-by-length intermediate" in result.reason and "T=256" in result.reason


def test_quadratic_only_at_the_training_lengths_of_the_cpu_budget_is_too_slow():
    budget = get_budget("mqar", "cpu")  # training lengths 64 and 128: above the chunk limit at 128
    path = CANDIDATES / "cost_mask_short.py"
    result = check_complexity(factory(path, budget), path, budget, CPU, 1.5, exempt=False)
    assert not result.passed and result.details["status"] == "too_slow"
    assert result.details["length"] == 97 and "line 14" in result.reason
    assert result.details["exponent"] < 1.5  # the fitted exponent alone would have passed it


def test_quadratic_at_the_lengths_in_use_behind_buffers_sized_like_them_is_caught_by_the_length_switch():
    budget = get_budget("mqar", "cpu")
    path = CANDIDATES / "cost_quadratic_hidden_widths.py"
    result = check_complexity(factory(path, budget), path, budget, CPU, 1.5, exempt=False)
    assert not result.passed and result.details["status"] == "leaky"
    assert "another function at T=64, batch 32 than at T=256, batch 1" in result.reason
    assert "use one algorithm at every length and batch size" in result.reason
    # neither the fitted exponent nor the square rule saw it: the buffer's dimensions pass for widths
    assert result.details["exponent"] < 1.5 and "shape" not in result.details


def test_an_algorithm_that_switches_with_the_length_is_leaky_end_to_end(tmp_path):
    result = run("cost_quadratic_hidden_widths.py", tmp_path)
    assert result.status is Status.LEAKY
    assert "another function at T=32, batch 16 than at T=256, batch 1" in result.reason
    assert [c.name for c in result.checks if not c.passed] == ["complexity"]


@pytest.mark.parametrize("name", ["valid_params_above_length.py", "valid_lazy_cache.py"])
def test_unusual_valid_mixers_pass_every_check(tmp_path, name):
    result = run(name, tmp_path)
    assert result.status is Status.OK, result.reason
    assert all(c.passed for c in result.checks) and result.checks[-1].name == "trained_causality"
