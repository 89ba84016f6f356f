"""The functional checks, run in-process on benign candidate files (never on hostile ones).

Each failing check must name what to fix: the leaking position, the exponent, the line.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluator.backbone import build_model
from evaluator.budgets import get_budget
from evaluator.candidate_loader import CandidateError, load_mixer_class
from evaluator.checks import (check_batch_independence, check_causality, check_complexity, check_forward,
                              check_instantiate, check_trained_causality, precision_for)
from evaluator.checks.common import check_lengths, first_change
from evaluator.measure import count_forward_work, fit_exponent
from evaluator.references import get_reference

CANDIDATES = Path(__file__).with_name("candidates")
BUDGET = get_budget("mqar", "smoke")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def factory(path: Path):
    mixer_class = load_mixer_class(path)
    return lambda: mixer_class(BUDGET.d_model, BUDGET.n_heads)


def test_a_reference_passes_every_check():
    path = get_reference("gated_delta_rule").path
    make = factory(path)
    results = [check_instantiate(make, path, BUDGET, 64), check_forward(make, path, BUDGET),
               check_causality(make, path, BUDGET, 0), check_batch_independence(make, path, BUDGET, 0),
               check_complexity(make, path, BUDGET, CPU, 1.5, exempt=False)]
    assert [r.reason for r in results if not r.passed] == []
    assert results[4].details["exponent"] == pytest.approx(1.0, abs=0.1)


def test_future_leak_names_the_first_leaking_position():
    path = CANDIDATES / "noncausal_mean.py"
    result = check_causality(factory(path), path, BUDGET, 0)
    assert not result.passed and result.details["status"] == "leaky"
    assert result.details["position"] == 0
    assert "output at position 0 changed by" in result.reason and "inputs after position 0" in result.reason


def test_leak_behind_a_zero_initialised_gate_is_caught_on_randomised_parameters():
    path = CANDIDATES / "zero_gated_leak.py"
    result = check_causality(factory(path), path, BUDGET, 0)
    assert not result.passed and "randomised parameters" in result.reason


def test_leak_only_in_eval_mode_is_caught():
    path = CANDIDATES / "eval_mode_leak.py"
    result = check_causality(factory(path), path, BUDGET, 0)
    assert not result.passed and "eval mode" in result.reason


def test_batch_statistics_are_caught():
    path = CANDIDATES / "batch_mean.py"
    result = check_batch_independence(factory(path), path, BUDGET, 0)
    assert not result.passed and result.details["status"] == "leaky"
    assert "only sample 1 was perturbed" in result.reason


def test_wrong_output_shape_and_unused_parameters_are_named():
    path = CANDIDATES / "wrong_shape.py"
    shape = check_forward(factory(path), path, BUDGET)
    assert not shape.passed and "returned shape [2, 32, 64] for input shape [2, 32, 32]" in shape.reason
    path = CANDIDATES / "unused_parameter.py"
    unused = check_forward(factory(path), path, BUDGET)
    assert not unused.passed and "forgotten.weight" in unused.reason


def test_an_exception_in_candidate_code_names_its_line():
    path = CANDIDATES / "raises_in_forward.py"
    result = check_forward(factory(path), path, BUDGET)
    assert not result.passed and result.details["status"] == "invalid"
    assert "line 13: `return (x @ self.weight) * scale`" in result.reason and "RuntimeError" in result.reason


def test_missing_constructor_argument_is_explained():
    path = CANDIDATES / "missing_n_heads.py"
    result = check_instantiate(factory(path), path, BUDGET, 64)
    assert not result.passed and "Mixer(d_model=32, n_heads=2)" in result.reason and "TypeError" in result.reason


def test_parameter_budget_counts_the_whole_model():
    path = CANDIDATES / "oversized.py"
    result = check_instantiate(factory(path), path, BUDGET, 64)
    assert not result.passed and result.details["status"] == "over_budget"
    assert f"allows {BUDGET.max_parameters:,}" in result.reason and result.details["parameters"] > 1_000_000


def test_quadratic_mixer_is_too_slow_with_its_exponent_and_a_reference_is_exempt():
    path = CANDIDATES / "quadratic_attention.py"
    result = check_complexity(factory(path), path, BUDGET, CPU, 1.5, exempt=False)
    assert not result.passed and result.details["status"] == "too_slow"
    assert "grows as T^1.9" in result.reason and "limit T^1.5" in result.reason
    exempt = check_complexity(factory(path), path, BUDGET, CPU, 1.5, exempt=True)
    assert exempt.passed and "exempt" in exempt.reason


def test_counted_work_is_linear_for_a_chunked_scan_and_quadratic_for_attention():
    lengths = [256, 512, 1024]
    scan, attention = factory(CANDIDATES / "gated_ema.py")(), factory(CANDIDATES / "quadratic_attention.py")()
    scan_work = [count_forward_work(scan, torch.randn(1, n, 32)) for n in lengths]
    attention_work = [count_forward_work(attention, torch.randn(1, n, 32)) for n in lengths]
    assert fit_exponent(lengths, scan_work) == pytest.approx(1.0, abs=0.05)
    assert fit_exponent(lengths, attention_work) > 1.8


def test_trained_model_check_catches_a_leak_on_real_tokens():
    path = CANDIDATES / "noncausal_mean.py"
    model = build_model(factory(path), 64, BUDGET)
    result = check_trained_causality(model, [torch.randint(64, (16, 32))], 64, path, 0, precision_for(CPU))
    assert not result.passed and "after training, logits at position 0" in result.reason
    assert "T=32, batch 16, float32" in result.reason
    clean = build_model(factory(CANDIDATES / "causal_cummax.py"), 64, BUDGET)
    assert check_trained_causality(clean, [torch.randint(64, (16, 32))], 64, path, 0, precision_for(CPU)).passed


def test_trained_model_check_counts_tensors_that_training_changed():
    path = CANDIDATES / "cost_list_memory.py"
    make = factory(path)

    def rebuild():
        torch.manual_seed(0)
        return build_model(make, 64, BUDGET)
    trained = rebuild()
    trained.blocks[0].mixer.memory[2] += 1.0  # as a hook would during training
    result = check_trained_causality(trained, [torch.randint(64, (16, 32))], 64, path, 0, precision_for(CPU),
                                     rebuild, BUDGET)
    assert not result.passed and result.details["status"] == "over_budget"
    assert "after training" in result.reason and "`blocks.0.mixer.memory[2]` (shape [30000, 32]" in result.reason


def test_per_position_tolerance_is_not_widened_by_one_huge_value():
    before = torch.randn(2, 8, 4)
    before[0, 7, 0] = 1e6
    after = before.clone()
    after[1, 3, 2] += 1e-3 * before[1, 3].abs().median()
    judged = torch.ones(2, 8, dtype=torch.bool)
    change = first_change(before, after, judged, precision_for(CPU))
    assert change is not None and (change.sample, change.position) == (1, 3)
    assert first_change(before, before.clone(), judged, precision_for(CPU)) is None


def test_check_lengths_cover_training_lengths_and_one_odd_length():
    assert check_lengths(get_budget("mqar", "cpu")) == [64, 97, 128]
    assert check_lengths(BUDGET) == [32, 49, 64]


def test_loading_a_file_without_mixer_says_what_is_missing(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("import torch\n")
    with pytest.raises(CandidateError, match="must define `class Mixer"):
        load_mixer_class(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\n\nVALUE = 1 / 0\n")
    with pytest.raises(CandidateError, match=r"line 3: `VALUE = 1 / 0`"):
        load_mixer_class(broken)
