"""Fitness is relative to the baseline, carries its uncertainty, and flags the implausible."""
from __future__ import annotations

import math

import pytest

from evaluator.fitness import combine_seeds, fitness, implausible


def test_mqar_fitness_is_accuracy_gained_over_the_baseline():
    assert fitness("mqar", {"accuracy": 0.9}, {"accuracy": 0.6}) == pytest.approx(0.3)
    assert fitness("mqar", {"accuracy": 0.5}, {"accuracy": 0.6}) == pytest.approx(-0.1)


def test_bytelm_fitness_is_bits_per_byte_saved_so_positive_is_better():
    assert fitness("bytelm", {"val_bpb": 2.0}, {"val_bpb": 2.3}) == pytest.approx(0.3)
    assert fitness("bytelm", {"val_bpb": 2.5}, {"val_bpb": 2.3}) == pytest.approx(-0.2)


def test_fitness_names_the_missing_metric_and_the_unknown_task():
    with pytest.raises(KeyError, match="needs metric 'val_bpb'"):
        fitness("bytelm", {"accuracy": 1.0}, {"val_bpb": 2.0})
    with pytest.raises(ValueError, match="no fitness defined for task 'imagenet'"):
        fitness("imagenet", {}, {})


def test_combine_seeds_gives_the_mean_and_its_standard_error():
    mean, stderr = combine_seeds([0.1, 0.2, 0.3])
    assert mean == pytest.approx(0.2)
    assert stderr == pytest.approx(0.1 / math.sqrt(3))
    assert combine_seeds([0.4]) == (0.4, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        combine_seeds([])
    with pytest.raises(ValueError, match="non-finite"):
        combine_seeds([0.1, float("nan")])


def test_recall_far_above_the_ceiling_where_it_struggles_is_flagged():
    ceiling = {"accuracy_by_length": {"64": 0.95, "128": 0.3}}
    flag = implausible("mqar", {"accuracy_by_length": {"64": 0.97, "128": 1.0}}, ceiling)
    assert "length 128" in flag and "0.30" in flag
    assert implausible("mqar", {"accuracy_by_length": {"64": 1.0, "128": 0.5}}, ceiling) == ""


def test_bits_per_byte_far_below_the_ceiling_is_flagged():
    assert "below the softmax ceiling" in implausible("bytelm", {"val_bpb": 1.0}, {"val_bpb": 2.0})
    assert implausible("bytelm", {"val_bpb": 1.9}, {"val_bpb": 2.0}) == ""
