"""(2) Instantiation within the parameter budget, hidden trainable state included, and (3) a
forward of the right shape whose backward reaches every parameter at the training lengths."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evaluator.backbone import MixerFactory, build_model, count_parameters
from evaluator.budgets import Budget
from evaluator.candidate_loader import CandidateError, blame_candidate
from evaluator.checks.common import check_lengths, fail, output_problem, timed
from evaluator.checks.state import HiddenTensor, describe_hidden, held_tensors, hidden_trainable, snapshot
from evaluator.records import CheckResult, Status


def train_step(model: nn.Module, tokens: torch.Tensor, vocab_size: int) -> None:
    """One forward and backward as training does them (no optimiser step): the candidate's hooks run."""
    model.train()
    logits = model(tokens)
    F.cross_entropy(logits.float().flatten(0, 1), tokens.roll(-1, dims=1).flatten()).backward()
    model.zero_grad(set_to_none=True)


def hidden_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor the mixers hold outside the model's parameters, named from the model's root."""
    found: dict[str, torch.Tensor] = {}
    for index, block in enumerate(model.blocks):
        found.update(held_tensors(block.mixer, f"blocks.{index}.mixer"))
    return found


def over_budget(name: str, model: nn.Module, hidden: list[HiddenTensor], budget: Budget, when: str) -> CheckResult:
    """Parameters plus hidden trainable elements against the budget: pass, or over_budget naming both."""
    total = count_parameters(model)
    mixers = sum(count_parameters(block.mixer) for block in model.blocks)
    extra = sum(h.elements for h in hidden)
    details = {"parameters": total, "mixer_parameters": mixers, "hidden_elements": extra,
               "max_parameters": budget.max_parameters, "hidden": [h.path for h in hidden[:20]]}
    if total + extra <= budget.max_parameters:
        return CheckResult(name, True, "", details)
    if extra:
        reason = (f"{when}, the mixers hold {extra:,} trainable values outside parameters(): "
                  f"{describe_hidden(hidden)}; with the {total:,} parameters that is {total + extra:,}, above the "
                  f"budget of {budget.max_parameters:,}: every tensor that requires grad or is updated counts; "
                  "shrink that state or make it a constant")
    else:
        reason = (f"the model has {total:,} parameters, {mixers:,} of them in the {budget.n_layers} mixers "
                  f"({mixers // budget.n_layers:,} each); the budget allows {budget.max_parameters:,} in all: "
                  "shrink the mixer's projections or state")
    return fail(name, Status.OVER_BUDGET, reason, **details)


def check_instantiate(make_mixer: MixerFactory, candidate: Path, budget: Budget, vocab_size: int,
                      device: torch.device = torch.device("cpu")) -> CheckResult:
    """(2) The whole model builds with `Mixer(d_model, n_heads)` and fits the parameter budget,
    counting tensors the mixers hold that require grad or change across a training step."""
    def run() -> CheckResult:
        call = f"Mixer(d_model={budget.d_model}, n_heads={budget.n_heads})"
        with blame_candidate(candidate, call):
            model = build_model(make_mixer, vocab_size, budget).to(device)
        if count_parameters(model) > budget.max_parameters:
            return over_budget("instantiate", model, [], budget, "")
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(vocab_size, (budget.batch_size, min(budget.seq_lens)), generator=generator).to(device)
        try:
            with blame_candidate(candidate, f"a training step at {list(tokens.shape)}"):
                train_step(model, tokens, vocab_size)  # a warm-up: caches built once are not state
                before = snapshot(hidden_state(model))
                train_step(model, tokens, vocab_size)
        except CandidateError:  # a broken forward: the forward check names the problem precisely
            return over_budget("instantiate", model, [], budget, "")
        return over_budget("instantiate", model, hidden_trainable(hidden_state(model), before), budget,
                           "across one training step")
    return timed("instantiate", run)


def check_forward(make_mixer: MixerFactory, candidate: Path, budget: Budget) -> CheckResult:
    """(3) Output has the input's shape and dtype, is finite, and backward reaches every parameter
    at one of the training lengths (a parameter used only at longer lengths is fine)."""
    def run() -> CheckResult:
        with blame_candidate(candidate, "Mixer construction"):
            mixer = make_mixer()
        reached: set[str] = set()
        lengths = check_lengths(budget)
        for length in lengths:
            x = torch.randn(2, length, budget.d_model, requires_grad=True)
            with blame_candidate(candidate, f"forward on input [2, {length}, {budget.d_model}]"):
                y = mixer(x)
            problem = output_problem(x, y)
            if problem:
                return fail("forward", Status.INVALID, problem)
            mixer.zero_grad(set_to_none=True)
            with blame_candidate(candidate, "backward"):
                (y * torch.randn_like(y)).sum().backward()
            reached |= {n for n, p in mixer.named_parameters() if p.grad is not None}
            broken = [n for n, p in mixer.named_parameters() if p.grad is not None and not p.grad.isfinite().all()]
            if broken:
                return fail("forward", Status.INVALID,
                            f"non-finite gradients for parameter(s) {', '.join(broken[:10])} at T={length}: "
                            "look for divisions by zero, log/sqrt of non-positive values, or overflowing exp")
        missing = [n for n, p in mixer.named_parameters() if p.requires_grad and n not in reached]
        if missing:
            return fail("forward", Status.INVALID,
                        f"backward reaches no gradient for parameter(s) {', '.join(missing[:10])} at any training "
                        f"length (T = {', '.join(map(str, lengths))}): use them in forward, or remove them or set "
                        "requires_grad=False")
        return CheckResult("forward", True, "", {"lengths": lengths})
    return timed("forward", run)
