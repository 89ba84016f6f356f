"""Rendered genomes train: a dozen random points of the design space through the real harness.

Slow (tens of seconds): each genome trains for a few dozen AdamW steps at the smoke budget's
learning rate (3e-3) on MQAR, and must neither produce non-finite values nor explode.
"""
from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path

import pytest
import torch

from agents.offline.operators import random_genome
from agents.offline.render import render_candidate
from evaluator.backbone import build_model
from evaluator.budgets import get_budget
from evaluator.candidate_loader import load_mixer_class
from evaluator.harness import seed_everything, train
from evaluator.tasks import get_task

GENOMES = [random_genome(random.Random(1000 + seed)) for seed in range(12)]


@pytest.mark.slow
@pytest.mark.parametrize("genome", GENOMES, ids=lambda g: g.genome_id())
def test_random_genome_trains_without_diverging(genome, tmp_path: Path):
    torch.set_num_threads(1)
    budget = dataclasses.replace(get_budget("mqar", "smoke"), steps=24, log_every=1)
    task = get_task("mqar")
    vocab = task.vocab_size(budget)
    candidate = tmp_path / "candidate.py"
    candidate.write_text(render_candidate(genome))
    mixer_class = load_mixer_class(candidate)
    seed_everything(0)
    model = build_model(lambda: mixer_class(budget.d_model, budget.n_heads), vocab, budget)
    data = task.make_data(budget, seed=0)
    result = train(model, data.train_batch, budget, torch.device("cpu"), time.perf_counter() + 120, vocab, candidate)
    losses = [loss for _, loss in result.loss_curve]
    assert not result.diverged, result.diverged
    assert result.steps_done == budget.steps and all(math.isfinite(loss) for loss in losses)
    assert min(losses[-5:]) < losses[0]  # it learns something, at least the output distribution
