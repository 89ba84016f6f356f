"""The yardstick's pure parts: intervals and the "beats" verdict, rank correlations, suite scores,
the Pareto front, promotion on the ladder, and the mqar sweep's data and metrics."""
from __future__ import annotations

import math

import pytest
import torch

from agents.yardstick import archive_proxy_correlations, best_against_references, promoted, rung_correlations
from evaluator.budgets import get_budget
from evaluator.stats import Interval, beats, interval, kendall_tau, spearman_rho
from evaluator.suite import SuiteWeights, efficiency, pareto_front, suite_score, task_score
from evaluator.tasks import get_task
from knowledge.records import Experiment, ExperimentBrief, Fitness, Stage
from knowledge.selection import pareto_indices, sample_parent


def test_beats_only_when_the_interval_of_the_difference_excludes_zero():
    clear = beats(interval([0.50, 0.52, 0.51]), interval([0.30, 0.31, 0.29]))
    assert clear.beats and "excludes zero" in clear.reason
    noisy = beats(interval([0.50, 0.20, 0.80]), interval([0.40, 0.41, 0.39]))
    assert not noisy.beats and "includes zero" in noisy.reason
    single = beats(Interval(0.9, 0.0, 1), interval([0.1, 0.1, 0.1]))
    assert not single.beats and "run 2 or more seeds" in single.reason
    assert math.isinf(Interval(1.0, 0.0, 1).half_width)
    assert interval([1.0, 3.0]).high == pytest.approx(2.0 + 12.706 * 1.0)


def test_rank_correlations_count_ties_and_refuse_too_few_pairs():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2], [1, 2]) is None
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None  # a constant side has no order
    assert spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="paired"):
        kendall_tau([1, 2, 3], [1, 2])


def _result(metrics: dict, tps: float = 1000.0, latency: float = 10.0) -> dict:
    return {"metrics": metrics, "train_tokens_per_second": tps, "inference_latency_ms": {"256": 1.0, "1024": latency}}


def test_suite_score_is_zero_at_the_baseline_one_at_the_ceiling_and_counts_speed():
    base = {"mqar": _result({"accuracy": 0.2}), "bytelm": _result({"val_bpb": 3.0})}
    ceiling = {"mqar": _result({"accuracy": 0.6}), "bytelm": _result({"val_bpb": 2.5})}
    weights = SuiteWeights({"mqar": 1.0, "bytelm": 1.0}, quality=1.0, efficiency=0.5)
    assert suite_score(base, base, ceiling, weights).value == 0.0
    at_ceiling = suite_score(ceiling, base, ceiling, weights)
    assert at_ceiling.quality == pytest.approx(1.0) and at_ceiling.per_task == pytest.approx({"mqar": 1, "bytelm": 1})
    faster = {t: {**r, "train_tokens_per_second": 2000.0, "inference_latency_ms": {"1024": 5.0}} for t, r in base.items()}
    assert suite_score(faster, base, ceiling, weights).efficiency == pytest.approx(1.0)  # twice as fast on both
    with pytest.raises(KeyError, match="missing"):
        suite_score({"mqar": base["mqar"]}, base, ceiling, weights)


def test_a_ceiling_that_does_not_lead_scales_by_the_minimum_gap_not_a_flipped_sign():
    # bytelm at a short budget: softmax attention behind the baseline; better must still score positive
    assert task_score("bytelm", {"val_bpb": 2.9}, {"val_bpb": 3.0}, {"val_bpb": 3.1}) == pytest.approx(2.0)
    assert task_score("mqar", {"accuracy": 0.3}, {"accuracy": 0.2}, None) == pytest.approx(2.0)


def test_efficiency_needs_both_figures_at_the_same_length():
    assert efficiency(_result({}), {"train_tokens_per_second": None}) is None
    assert efficiency(_result({}), {"train_tokens_per_second": 10.0, "inference_latency_ms": {"4096": 1.0}}) is None


def test_pareto_front_keeps_what_nothing_beats_on_quality_and_cost():
    points = [("a", 0.9, 10.0), ("b", 0.5, 1.0), ("c", 0.4, 5.0), ("d", 0.9, 20.0)]
    assert pareto_front(points) == ["a", "b"]


def _brief(i: str, fitness: float | None, latency: float | None, proposer: str = "offline") -> ExperimentBrief:
    return ExperimentBrief(i, None, proposer, Stage.ANALYZED, "ok", fitness, latency_ms=latency)


def test_pareto_selection_draws_parents_from_the_front_only():
    briefs = [_brief("e1", 0.1, 1.0), _brief("e2", 0.5, 5.0), _brief("e3", 0.2, 9.0), _brief("e4", None, None)]
    assert pareto_indices(briefs) == [0, 1]
    assert {sample_parent(briefs, seed, "pareto").id for seed in range(20)} == {"e1", "e2"}
    with pytest.raises(ValueError, match="'pareto'"):
        sample_parent(briefs, 0, "best")


def test_promotion_keeps_the_top_fraction_and_always_one():
    assert promoted(0.9, [0.1, 0.2, 0.3], 0.25)
    assert not promoted(0.2, [0.1, 0.9, 0.3], 0.25)
    assert promoted(0.5, [], 0.25)
    assert promoted(0.3, [0.9, 0.1, 0.2, 0.0, 0.05, 0.01, 0.02], 0.25)  # 2 of 8 climb: the second does


def _exp(i: str, fitness: float, rungs: dict | None = None, proxies: dict | None = None,
         proposer: str = "offline", seeds: int = 2, stderr: float = 0.01) -> Experiment:
    return Experiment(id=i, run="r", name=i, proposer=proposer, stage=Stage.ANALYZED, status="ok",
                      fitness=Fitness(value=fitness, stderr=stderr, seeds=seeds),
                      metrics={"metrics": {"proxies": proxies or {}}, **({"rungs": rungs} if rungs else {})})


def test_rung_and_proxy_correlations_use_the_candidates_measured_on_both():
    gpu = lambda v: {"gpu": {"fitness": {"value": v}}}  # noqa: E731
    experiments = [_exp("e1", 0.1, gpu(0.2), {"snip": 1.0}), _exp("e2", 0.2, gpu(0.3), {"snip": 2.0}),
                   _exp("e3", 0.3, gpu(0.5), {"snip": 3.0}), _exp("e4", 0.4, None, {"snip": 0.5})]
    found = rung_correlations(experiments, ["cpu", "gpu"], "cpu")
    assert found == {"cpu -> gpu": {"candidates": 3, "kendall": 1.0}}
    proxies = archive_proxy_correlations(experiments)
    assert proxies["snip"]["candidates"] == 4 and proxies["snip"]["spearman"] == pytest.approx(-0.2)


def test_the_best_proposal_beats_the_best_reference_only_by_its_interval():
    refs = [_exp("e1", 0.0, proposer="reference"), _exp("e2", 0.10, proposer="reference")]
    clear = best_against_references([*refs, _exp("e3", 0.30)])
    assert clear.verdict.beats and clear.reference.id == "e2" and clear.best.id == "e3"
    one_seed = best_against_references([*refs, _exp("e3", 0.90, seeds=1, stderr=0.0)])
    assert not one_seed.verdict.beats and "2 or more seeds" in one_seed.verdict.reason


def test_mqar_sweep_measures_every_point_and_headlines_their_mean():
    budget = get_budget("mqar", "cpu-suite")
    task = get_task("mqar")
    data = task.make_data(budget, seed=0)
    points = [f"{t}/{n}" for t, n in budget.task_config.eval_points]
    assert data.describe()["eval_points"] == points
    assert max(n for _, n in budget.task_config.eval_points) > max(budget.task_config.kv_pairs)
    batches = data.eval_sweep()

    def perfect(tokens: torch.Tensor) -> torch.Tensor:  # recalls the token that followed a token's last use
        logits = torch.zeros(*tokens.shape, budget.task_config.vocab_size)
        for row, sequence in enumerate(tokens.tolist()):
            after: dict[int, int] = {}
            for t, token in enumerate(sequence):
                if token in after:
                    logits[row, t, after[token]] = 1.0
                if t + 1 < len(sequence):
                    after[token] = sequence[t + 1]
        return logits
    metrics = task.metrics(perfect, data, torch.device("cpu"))
    assert metrics["accuracy"] == 1.0 and sorted(metrics["accuracy_by_point"]) == sorted(points)
    assert set(metrics["accuracy_by_length"]) == {"64", "128", "256", "512"}
    assert task.make_data(budget, seed=0).eval_sweep()[0][1].inputs.equal(batches[0][1].inputs)  # deterministic


def test_an_impossible_sweep_point_fails_before_training():
    from dataclasses import replace
    from evaluator.tasks.mqar import MQARConfig
    budget = replace(get_budget("mqar", "cpu"), task_config=MQARConfig(32, (4, 8), eval_points=((128, 20),)))
    with pytest.raises(ValueError, match="cannot fit 20 key-value pairs in length 128 with vocabulary 32"):
        get_task("mqar").make_data(budget, seed=0)


def _run(accuracy: float, bpb: float, tps: float = 1000.0) -> dict:
    return {"mqar": {"status": "ok", **_result({"accuracy": accuracy}, tps)},
            "bytelm": {"status": "ok", **_result({"val_bpb": bpb}, tps)}}


def test_suite_fitness_is_relative_to_the_baselines_seeds_and_carries_their_spread():
    from agents.suite_scoring import suite_fitness
    weights = SuiteWeights({"mqar": 1.0, "bytelm": 1.0}, efficiency=0.0)
    base = [_run(0.2, 3.0), _run(0.22, 3.02)]
    ceiling = _run(0.6, 2.5)
    fit = suite_fitness(weights, [_run(0.6, 2.5), _run(0.62, 2.52)], base, ceiling)
    assert fit.value == pytest.approx(1.0) and fit.seeds == 2 and fit.stderr > 0
    assert fit.components["task:mqar"] == pytest.approx(1.025) and fit.components["efficiency"] == 0.0
    assert suite_fitness(weights, base, base, ceiling).value == pytest.approx(0.0)
    without = suite_fitness(weights, [_run(0.25, 3.0)], base, None)
    assert any("no ceiling measured yet" in note for note in without.notes)


def test_yardstick_config_refuses_what_it_cannot_do_and_says_what_to_fix():
    from pydantic import ValidationError
    from agents.config import YardstickConfig
    assert YardstickConfig().tasks == [] and YardstickConfig().efficiency_weight == 0.1
    with pytest.raises(ValidationError, match="unknown task"):
        YardstickConfig(tasks=["mqar", "wiki"])
    with pytest.raises(ValidationError, match="not in yardstick.tasks"):
        YardstickConfig(tasks=["mqar"], task_weights={"bytelm": 2.0})
    assert YardstickConfig(tasks=["mqar", "bytelm"], ladder=[{"budget": "gpu"}]).ladder[0].budget == "gpu"
    with pytest.raises(ValidationError, match=r"no budget for mqar/huge, bytelm/huge \(task/budget\); .*: cpu, "):
        YardstickConfig(tasks=["mqar", "bytelm"], ladder=[{"budget": "smoke"}, {"budget": "huge"}])


def test_yardstick_bench_summarises_saved_rungs_and_ranks_them_against_each_other(tmp_path):
    """`bench_yardstick.py --from A --compare B` evaluates nothing: it summarises A again and ranks the
    references of both files (how the cpu-suite and gpu rungs, measured in different calls, are compared)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    def saved(budget: str, recall: dict[str, list[float]]) -> Path:
        grid = {"mqar": {name: {str(seed): {"status": "ok", "metrics": {"accuracy": value}}
                                for seed, value in enumerate(values)} for name, values in recall.items()}}
        path = tmp_path / f"{budget}.json"
        path.write_text(json.dumps({"budget": budget, "device": "cuda", "tasks": ["mqar"], "seeds": ["0", "1"],
                                    "grid": grid}))
        return path
    cheap = saved("cpu-suite", {"softmax_attention": [0.6, 0.7], "gated_delta_rule": [0.2, 0.18],
                                "linear_attention": [0.1, 0.12], "short_convolution": [0.04, 0.03]})
    dear = saved("gpu", {"softmax_attention": [0.9, 0.2], "gated_delta_rule": [0.1, 0.12],
                         "linear_attention": [0.15, 0.15], "short_convolution": [0.03, 0.03]})
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_yardstick.py"
    done = subprocess.run([sys.executable, str(bench), "--from", str(cheap), "--compare", str(dear)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["budget"] == "cpu-suite"
    assert figures["summary"]["best"]["mqar"]["reference"] == "softmax_attention"
    assert math.isclose(figures["summary"]["best"]["mqar"]["distance_from_max"], 0.35)
    assert figures["summary"]["kendall_tau_between_seeds"]["mqar"]["0-1"] == 1.0
    # gpu means: attention 0.55, linear 0.15, gated delta 0.11, convolution 0.03: one pair of six swapped
    assert figures["rungs"]["mqar"] == {"references": 4, "kendall": pytest.approx(4 / 6)}
