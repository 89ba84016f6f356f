"""The training harness: schedule, masked loss, divergence, the wall budget, and that it learns."""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path

import pytest
import torch

from evaluator.backbone import build_model, count_parameters
from evaluator.budgets import get_budget
from evaluator.harness import (AdamW, divergence, learning_rate, make_optimizer, masked_cross_entropy, seed_everything,
                               train)
from evaluator.tasks import IGNORE_INDEX, Batch, get_task

BUDGET = get_budget("mqar", "smoke")
CANDIDATE = Path(__file__).with_name("candidates") / "causal_cummax.py"


class CumsumMixer(torch.nn.Module):
    """A small causal mixer written in the test: a running mean through a linear layer."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.proj = torch.nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype)[None, :, None]
        return self.proj(torch.cumsum(x, dim=1) / steps)


@pytest.fixture(autouse=True)
def one_thread():
    """Two threads on a shared two-core machine spin against each other; one is faster and steadier."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_model(budget=BUDGET, vocab: int = 64):
    seed_everything(0)
    return build_model(lambda: CumsumMixer(budget.d_model, budget.n_heads), vocab, budget)


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_a_tenth():
    budget = dataclasses.replace(BUDGET, steps=100, warmup_steps=10, lr=1e-3)
    assert learning_rate(0, budget) == pytest.approx(1e-4)
    assert learning_rate(9, budget) == pytest.approx(1e-3)
    assert learning_rate(55, budget) == pytest.approx(0.55e-3)
    assert learning_rate(100, budget) == pytest.approx(1e-4)
    assert all(learning_rate(s, budget) >= learning_rate(s + 1, budget) for s in range(10, 100))


def test_masked_cross_entropy_ignores_unscored_positions():
    logits = torch.randn(2, 5, 7)
    targets = torch.full((2, 5), IGNORE_INDEX)
    targets[0, 3], targets[1, 1] = 4, 2
    expected = -(torch.log_softmax(logits[0, 3], -1)[4] + torch.log_softmax(logits[1, 1], -1)[2]) / 2
    assert masked_cross_entropy(logits, targets) == pytest.approx(float(expected), rel=1e-5)


def test_backbone_ties_the_head_to_the_embedding_and_returns_logits():
    model = make_model()
    assert model(torch.randint(64, (2, 9))).shape == (2, 9, 64)
    untied = sum(p.numel() for p in model.parameters()) + model.embedding.weight.numel()
    assert count_parameters(model) == untied - model.embedding.weight.numel()


def test_the_backbones_parts_compose_to_pre_norm_residual_blocks():
    """The parts span one mixer's output to the next mixer's input (so fewer pieces compile); composed, they must
    be exactly the documented model: x + mixer(norm(x)), x + mlp(norm(x)) per block, then norm and tied head."""
    model = make_model(dataclasses.replace(BUDGET, n_layers=3))
    with torch.no_grad():  # every norm's weight its own, so a part using the wrong block's layer shows
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    tokens = torch.randint(64, (2, 9))
    x = model.embedding(tokens)
    for block in model.blocks:
        x = x + block.mixer(block.mixer_norm(x))
        x = x + block.mlp(block.mlp_norm(x))
    expected = torch.nn.functional.linear(model.final_norm(x), model.embedding.weight)
    assert torch.equal(model(tokens), expected)


def test_training_lowers_the_loss_and_records_a_curve():
    budget = dataclasses.replace(BUDGET, steps=24, log_every=8)
    data = get_task("mqar").make_data(budget, 0)
    result = train(make_model(budget), data.train_batch, budget, torch.device("cpu"),
                   time.perf_counter() + 60, 64, CANDIDATE)
    assert [step for step, _ in result.loss_curve] == [0, 8, 16, 23]
    assert result.loss_curve[-1][1] < result.loss_curve[0][1]
    assert result.steps_done == 24 and not result.stopped_early and not result.diverged
    assert result.tokens_per_second > 0


def test_asking_for_step_graphs_on_the_cpu_trains_the_same_and_says_why_none_were_recorded():
    """CUDA graphs exist only on CUDA (tests/test_gpu_step_graphs.py records them there): on the CPU the steps run as
    always, to the same losses, and the record says why nothing was recorded."""
    budget = dataclasses.replace(BUDGET, steps=12, log_every=4)
    data = get_task("mqar").make_data(budget, 0)
    runs = []
    for graphs in (True, False):
        seed_everything(0)
        runs.append(train(make_model(budget), data.train_batch, budget, torch.device("cpu"),
                          time.perf_counter() + 60, 64, CANDIDATE, step_graphs=graphs))
    asked, plain = runs
    assert asked.loss_curve == plain.loss_curve and asked.steps_done == 12
    assert asked.step_graphs == {"recorded": False, "shapes": 0, "refused": "CUDA graphs need CUDA, and this is cpu"}
    assert plain.step_graphs == {"recorded": False, "shapes": 0, "refused": ""}


def test_training_stops_early_at_the_deadline_and_says_so():
    budget = dataclasses.replace(BUDGET, steps=10_000)
    data = get_task("mqar").make_data(budget, 0)
    result = train(make_model(budget), data.train_batch, budget, torch.device("cpu"),
                   time.perf_counter() + 1.0, 64, CANDIDATE)
    assert result.stopped_early and 0 < result.steps_done < 10_000


def test_training_stops_as_diverged_on_a_non_finite_loss():
    budget = dataclasses.replace(BUDGET, steps=50, log_every=5)
    poisoned = Batch(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long))
    model = make_model(budget)
    with torch.no_grad():
        model.embedding.weight[0] = float("nan")
    result = train(model, lambda step: poisoned, budget, torch.device("cpu"), time.perf_counter() + 60, 64, CANDIDATE)
    assert result.diverged.startswith("training loss is nan at step 0") and result.steps_done == 1


def test_divergence_explains_an_exploding_loss_with_step_and_value():
    assert divergence(30, 2.5, 16.6, [(20, 2.6), (30, 2.5)]) == ""
    reason = divergence(30, 99.0, 16.6, [(20, 3.1), (30, 99.0)])
    assert "exploded to 99 at step 30" in reason and "3.1 at step 20" in reason
    assert "nan at step 7" in divergence(7, math.nan, 16.6, [(7, math.nan)])


def _decay_groups(model: torch.nn.Module) -> list[dict]:
    return [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]


def test_the_written_out_adamw_matches_torch_optim_exactly():
    seed_everything(0)
    ours_model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    torch_model = copy.deepcopy(ours_model)
    ours = AdamW(_decay_groups(ours_model), lr=1e-2)
    reference = torch.optim.AdamW(_decay_groups(torch_model), lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    for _ in range(10):
        x = torch.randn(4, 8)
        for model, optimizer in ((ours_model, ours), (torch_model, reference)):
            model(x).pow(2).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    for mine, theirs in zip(ours_model.parameters(), torch_model.parameters()):
        assert torch.equal(mine, theirs)


def test_the_fused_adamw_matches_torch_optims_fused_kernel_and_the_multi_tensor_update():
    """The fused path (what CUDA uses) runs on CPU too: the same update as torch.optim's fused AdamW, and within
    float rounding of the multi-tensor one, with the learning rate changing per step as in training."""
    seed_everything(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    torch_model, foreach_model = copy.deepcopy(fused_model), copy.deepcopy(fused_model)
    fused = AdamW(_decay_groups(fused_model), lr=1e-2, fused=True)
    foreach = AdamW(_decay_groups(foreach_model), lr=1e-2)
    reference = torch.optim.AdamW(_decay_groups(torch_model), lr=torch.tensor(1e-2), betas=(0.9, 0.95), eps=1e-8,
                                  fused=True)  # with the learning rate as a tensor, as ours keeps it fused
    for step in range(10):
        x = torch.randn(4, 8)
        lr = 1e-2 * (step + 1) / 10
        fused.set_lr(lr)
        foreach.set_lr(lr)
        for group in reference.param_groups:
            group["lr"].fill_(lr)
        for model, optimizer in ((fused_model, fused), (torch_model, reference), (foreach_model, foreach)):
            model(x).pow(2).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    for mine, theirs, multi_tensor in zip(fused_model.parameters(), torch_model.parameters(),
                                          foreach_model.parameters()):
        assert torch.equal(mine, theirs)
        torch.testing.assert_close(mine, multi_tensor, rtol=1e-5, atol=1e-6)


def test_make_optimizer_fuses_only_on_cuda():
    model = torch.nn.Linear(4, 4)
    assert not make_optimizer(model, get_budget("mqar", "smoke")).fused
