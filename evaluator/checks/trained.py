"""The trained model, checked again before its results count: causality and batch independence on
real held-out tokens at the shapes and precision the metrics used, and its hidden state.

A leak that training learned to use, that opens only after many steps or calls, or only at the
scoring shapes, shows here; so does a tensor outside parameters() that training changed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from evaluator.budgets import Budget
from evaluator.candidate_loader import blame_candidate
from evaluator.checks.basic import hidden_state, over_budget, train_step
from evaluator.checks.common import Precision, fail, first_change, timed, with_float32
from evaluator.checks.leaks import PERTURBED_SAMPLE, spread_cuts
from evaluator.checks.state import HiddenTensor, digest
from evaluator.records import CheckResult, Status
from evaluator.tasks.base import Batch


def scoring_inputs(batches: list[tuple[int, Batch]]) -> list[torch.Tensor]:
    """The first held-out batch of each length: the shapes the metrics were computed at."""
    first: dict[int, torch.Tensor] = {}
    for length, batch in batches:
        first.setdefault(length, batch.inputs)
    return list(first.values())


def _leak(model: nn.Module, tokens: torch.Tensor, vocab_size: int, generator: torch.Generator,
          precision: Precision) -> CheckResult | None:
    def logits(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), precision.autocast():
            return model(inputs)
    batch, length = tokens.shape
    shape = f"T={length}, batch {batch}, {precision.label}"
    base = logits(tokens)
    cuts = spread_cuts(batch, length, generator).to(tokens.device)
    judged = torch.arange(length, device=tokens.device)[None, :] <= cuts[:, None]
    noise = torch.randint(vocab_size, tokens.shape, generator=generator).to(tokens.device)
    future = torch.where(judged, tokens, noise)
    change = first_change(base, logits(future), judged, precision, cuts)
    if change:  # confirm with that sample alone: batch mixing is reported as such below
        alone = tokens.clone()
        alone[change.sample] = future[change.sample]
        only = torch.zeros_like(judged)
        only[change.sample] = judged[change.sample]
        change = first_change(base, logits(alone), only, precision)
    if change:
        cut = int(cuts[change.sample])
        return fail("trained_causality", Status.LEAKY,
                    f"after training, logits at position {change.position} changed by {change.change:.3g} (relative "
                    f"{change.relative:.3g}) when only tokens after position {cut} were changed ({shape}): the "
                    "trained mixer reads the future", position=change.position, cut=cut, change=change.change,
                    relative=change.relative)
    if batch > PERTURBED_SAMPLE:
        other = tokens.clone()
        other[PERTURBED_SAMPLE] = noise[PERTURBED_SAMPLE]
        rest = torch.ones_like(judged)
        rest[PERTURBED_SAMPLE] = False
        change = first_change(base, logits(other), rest, precision)
        if change:
            return fail("trained_causality", Status.LEAKY,
                        f"after training, sample {change.sample}'s logits changed by {change.change:.3g} (relative "
                        f"{change.relative:.3g}) when only sample {PERTURBED_SAMPLE} changed ({shape}): the trained "
                        "mixer mixes across the batch", sample=change.sample, change=change.change,
                        relative=change.relative)
    return None


def _trained_state(model: nn.Module, rebuild: Callable[[], nn.Module], inputs: list[torch.Tensor],
                   vocab_size: int, budget: Budget) -> CheckResult:
    """Tensors outside parameters() that training changed, compared with a fresh model warmed up alike."""
    fresh = rebuild()
    train_step(fresh, inputs[0], vocab_size)
    with torch.no_grad():
        fresh.eval()
        for tokens in inputs:
            fresh(tokens)
    initial = {path: digest(t) for path, t in hidden_state(fresh).items()}
    return over_budget("trained_causality", model, _changed(hidden_state(model), initial), budget, "after training")


def _changed(tensors: dict[str, torch.Tensor], initial: dict[str, str]) -> list[HiddenTensor]:
    """Tensors that require grad, or that differ from the fresh model's at the same path and shape
    (a cache rebuilt for another length is not a change)."""
    changed = []
    for path, tensor in tensors.items():
        same_shape = path in initial and initial[path].split(":")[0] == str(tuple(tensor.shape))
        if tensor.requires_grad or (same_shape and initial[path] != digest(tensor)):
            why = "requires grad" if tensor.requires_grad else "changed during training"
            changed.append(HiddenTensor(path, tuple(tensor.shape), tensor.numel(), why))
    return changed


def check_trained_causality(model: nn.Module, inputs: list[torch.Tensor], vocab_size: int, candidate: Path,
                            seed: int, precision: Precision, rebuild: Callable[[], nn.Module] | None = None,
                            budget: Budget | None = None) -> CheckResult:
    """After training, in eval mode under the metrics' autocast, at each scoring shape: logits up to t
    ignore tokens after t and samples ignore each other; with `rebuild` (a fresh model built as the
    trained one was), hidden tensors that training changed count against the parameter budget."""
    def run() -> CheckResult:
        model.eval()
        generator = torch.Generator().manual_seed(seed + 3)
        on_device = [tokens.to(precision.device) for tokens in inputs]
        with blame_candidate(candidate, "forward of the trained model"):
            for probed in with_float32(precision):
                for tokens in on_device:
                    found = _leak(model, tokens, vocab_size, generator, probed)
                    if found:
                        return found
            if rebuild is not None and budget is not None:
                state = _trained_state(model, rebuild, on_device, vocab_size, budget)
                if not state.passed:
                    return state
        return CheckResult("trained_causality", True, "", {"shapes": [list(t.shape) for t in inputs],
                                                           "precision": precision.label})
    return timed("trained_causality", run)
