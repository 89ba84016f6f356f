"""The training loop: one plain, readable loop in the style of a minimal GPT training script.

AdamW with linear warmup and cosine decay, gradient clipping, bf16 autocast on CUDA, and the
loss computed here from the logits with the task's mask. The loop syncs with the device only
at logging steps (every `log_every`), where it records the loss curve and stops on a
non-finite or exploding loss; it stops early, and says so, when the wall budget runs out.
At those steps it also reports to `on_log`, which the worker turns into progress events.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluator.backbone import forward_exactly
from evaluator.budgets import Budget
from evaluator.candidate_loader import blame_candidate
from evaluator.measure import autocast_for, synchronize
from evaluator.step_graphs import StepGraphs
from evaluator.tasks.base import IGNORE_INDEX, Batch, Task, TaskData

MIN_LR_FRACTION = 0.1  # cosine decay ends at this share of the peak learning rate
StepLog = Callable[[int, float, float | None], None]  # (steps done, loss, tokens/s so far or None)


@dataclass
class TrainResult:
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    steps_done: int = 0
    stopped_early: bool = False     # the wall budget ran out before `budget.steps`
    diverged: str = ""              # why training was stopped as diverged; empty otherwise
    tokens_per_second: float = 0.0  # measured from the end of step 0 (which pays for warm-up)
    seconds: float = 0.0
    first_step_at: float = 0.0      # time.time() when step 0 began
    step_graphs: dict[str, Any] = field(default_factory=dict)  # StepGraphs.outcome(): were steps replayed as graphs


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def learning_rate(step: int, budget: Budget) -> float:
    """Linear warmup to budget.lr, then cosine decay to MIN_LR_FRACTION of it at the last step."""
    if step < budget.warmup_steps:
        return budget.lr * (step + 1) / budget.warmup_steps
    progress = (step - budget.warmup_steps) / max(1, budget.steps - budget.warmup_steps)
    return budget.lr * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


class AdamW:
    """AdamW (Loshchilov & Hutter, 2019) as torch.optim.AdamW computes it: multi-tensor ops, or with `fused` one
    kernel per parameter group (what `make_optimizer` picks on CUDA).

    Written out because the first use of anything in torch.optim imports torch._dynamo, which
    costs about 2 s of CPU per worker: a third of a smoke evaluation. Same update, same defaults.
    """

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                 fused: bool = False):
        self.param_groups = [{**group, "lr": lr} for group in groups if group["params"]]
        self.betas, self.eps, self.steps = betas, eps, 0
        self.moments = {p: (torch.zeros_like(p), torch.zeros_like(p)) for g in self.param_groups for p in g["params"]}
        first = next(iter(self.moments), None)
        # Fused, the step count and the learning rate live on the device, where the kernel reads them: a training step
        # replayed as a CUDA graph (evaluator/step_graphs.py) then counts and follows the schedule like any other.
        self.step_tensor = torch.zeros((), device=first.device) if fused and first is not None else None
        self.lr_tensor = torch.tensor(float(lr), device=first.device) if self.step_tensor is not None else None

    @property
    def fused(self) -> bool:
        return self.step_tensor is not None

    def set_lr(self, lr: float) -> None:
        """Every group's learning rate from the next step on."""
        for group in self.param_groups:
            group["lr"] = lr
        if self.lr_tensor is not None:
            self.lr_tensor.fill_(lr)

    @torch.no_grad()
    def step(self) -> None:
        if self.fused:
            self.step_tensor.add_(1)
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    torch._fused_adamw_(params, [p.grad for p in params], [self.moments[p][0] for p in params],
                                        [self.moments[p][1] for p in params], [], [self.step_tensor] * len(params),
                                        lr=self.lr_tensor, beta1=self.betas[0], beta2=self.betas[1],
                                        weight_decay=group["weight_decay"], eps=self.eps, amsgrad=False,
                                        maximize=False)
            return
        self.steps += 1
        beta1, beta2 = self.betas
        first_correction, second_correction = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            means = [self.moments[p][0] for p in params]
            squares = [self.moments[p][1] for p in params]
            torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_lerp_(means, grads, 1 - beta1)
            torch._foreach_mul_(squares, beta2)
            torch._foreach_addcmul_(squares, grads, grads, value=1 - beta2)
            denominators = torch._foreach_sqrt(squares)
            torch._foreach_div_(denominators, math.sqrt(second_correction))
            torch._foreach_add_(denominators, self.eps)
            torch._foreach_addcdiv_(params, means, denominators, value=-group["lr"] / first_correction)

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def make_optimizer(model: nn.Module, budget: Budget) -> AdamW:
    """Matrices decay, vectors and scalars (norms, biases, gates, rates) do not.

    Fused on CUDA: a compiled training step there is bound by the CPU that launches its kernels, and one kernel
    per group replaces eight multi-tensor ops (measured at bytelm `gpu`, side by side in one process: 0.25-2.0 ms
    less of a 16-24 ms step on one H200 host, no steady difference on another; docs/gpu.md, "MFU").
    On CPU the multi-tensor ops stay, so CPU results are unchanged."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and len({p.device for p in params}) == 1 and all(
        p.is_cuda and p.is_floating_point() for p in params)
    return AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": budget.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}], lr=budget.lr, fused=fused)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions the task scores (targets != IGNORE_INDEX)."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def train(model: nn.Module, train_batch: Callable[[int], Batch], budget: Budget, device: torch.device,
          deadline: float, vocab_size: int, candidate: Path, on_log: StepLog | None = None,
          step_graphs: bool = False) -> TrainResult:
    """Train `model` in place for budget.steps or until time.perf_counter() passes `deadline`.

    `on_log` is called at every logging step, after the loss is read (no extra device sync). `step_graphs`: replay
    the steps as CUDA graphs (evaluator/step_graphs.py; on CUDA, for a compiled model)."""
    result = TrainResult()
    optimizer = make_optimizer(model, budget)
    params = [p for p in model.parameters() if p.requires_grad]
    explode_above = budget.explode_factor * math.log(vocab_size)
    tokens_after_first, timer_start = 0, 0.0

    def one_step(batch: Batch) -> torch.Tensor:
        optimizer.zero_grad()
        with autocast_for(device):
            logits = forward_exactly(model, batch.inputs)
        loss = masked_cross_entropy(logits, batch.targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, budget.grad_clip)
        optimizer.step()
        return loss

    model.train()
    result.first_step_at = time.time()
    start = time.perf_counter()
    with StepGraphs(one_step, device, record=step_graphs) as run_step:
        for step in range(budget.steps):
            optimizer.set_lr(learning_rate(step, budget))
            batch = train_batch(step)
            with blame_candidate(candidate, f"training step {step}"):  # candidate code runs in forward and backward
                loss = run_step(batch)
            result.steps_done = step + 1
            tokens_after_first += batch.tokens if step > 0 else 0

            if step % budget.log_every == 0 or step == budget.steps - 1:
                value = loss.item()  # the only sync with the device
                result.loss_curve.append((step, value))
                result.diverged = divergence(step, value, explode_above, result.loss_curve)
                if on_log is not None:
                    now = time.perf_counter()
                    on_log(step + 1, value,
                           tokens_after_first / (now - timer_start) if step and now > timer_start else None)
                if result.diverged:
                    break
                if step == 0:
                    timer_start = time.perf_counter()
            if time.perf_counter() > deadline:
                result.stopped_early = step + 1 < budget.steps
                break
    optimizer.zero_grad()
    synchronize(device)
    end = time.perf_counter()
    result.seconds = end - start
    result.step_graphs = run_step.outcome()
    if tokens_after_first and end > timer_start > 0:
        result.tokens_per_second = tokens_after_first / (end - timer_start)
    return result


def divergence(step: int, loss: float, explode_above: float, curve: list[tuple[int, float]]) -> str:
    """Why this logged loss means training diverged, or '' when it is fine."""
    previous = f" (previous logged loss {curve[-2][1]:.4g} at step {curve[-2][0]})" if len(curve) > 1 else ""
    if not math.isfinite(loss):
        return f"training loss is {loss} at step {step}{previous}: the model produced non-finite values"
    if loss > explode_above:
        return (f"training loss exploded to {loss:.4g} at step {step}{previous}, above {explode_above:.3g} "
                "(a uniform guess scores ln(vocab)): outputs are probably unnormalised or growing")
    return ""


def held_out_metrics(model: nn.Module, task: Task, data: TaskData, device: torch.device,
                     candidate: Path) -> dict[str, Any]:
    """The task's metrics of the trained model, in eval mode, as it will be used.

    The task sees the model only through `forward_exactly`: plain, detached logits, and no mode or
    global hook of the candidate's left to intercept the metric's own torch calls.
    """
    model.eval()

    def logits_of(tokens: torch.Tensor) -> torch.Tensor:
        return forward_exactly(model, tokens).detach()
    with torch.no_grad(), autocast_for(device), blame_candidate(candidate, "evaluation"):
        return task.metrics(logits_of, data, device)
