"""Causality, statelessness and batch independence of the mixer, at the shapes training uses.

Each probe runs at every training length and at one odd length, at the training batch size,
under the precision training and scoring use, in eval mode (no_grad) and in train mode with
gradients, on the mixer as initialised and on a copy with jittered parameters (a leak behind a
zero-initialised gate cannot hide). Each sample is perturbed after its own cut, so one forward
tests many cuts; in train mode one backward also tests that no gradient flows from outputs at
<= cut to inputs after it. Between two identical calls the output and everything the module
holds (see state.fingerprint) must stay the same: a counter that opens a leak after N calls is
state that keeps changing. Perturbations come from their own generator, never the global stream.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from evaluator.backbone import MixerFactory
from evaluator.budgets import Budget
from evaluator.candidate_loader import blame_candidate
from evaluator.checks.common import (Change, Precision, check_lengths, fail, first_change, precision_for, timed,
                                     with_float32)
from evaluator.checks.state import changed_entries, fingerprint
from evaluator.records import CheckResult, Status

PERTURBED_SAMPLE = 1


@dataclass(frozen=True)
class Probe:
    """One setting a leak is looked for in: the module, its mode and the input shape."""

    module: nn.Module
    label: str
    train: bool
    x: torch.Tensor
    seed: int
    precision: Precision

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """One call as training (gradients on, input requiring grad) or scoring (no_grad) makes it."""
        torch.manual_seed(self.seed)  # the same dropout masks in every call: only the input may differ
        with torch.set_grad_enabled(self.train), self.precision.autocast():
            return self.module(x.requires_grad_(self.train) if x.is_leaf else x)


def unit_rows(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Gaussian rows scaled to root-mean-square 1, like the backbone's RMSNorm output."""
    x = torch.randn(shape, generator=generator)
    return (x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True))).to(device)


def jittered(mixer: nn.Module, seed: int) -> nn.Module:
    """A copy with every parameter moved by half its typical size: gates initialised at zero open."""
    copied = copy.deepcopy(mixer)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in copied.parameters():
            scale = max(float(p.abs().mean()), 0.02) if p.numel() else 0.0
            p.add_(0.5 * scale * torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device))
    return copied


def probes(make_mixer: MixerFactory, candidate: Path, budget: Budget, seed: int,
           precision: Precision) -> Iterator[Probe]:
    with blame_candidate(candidate, "Mixer construction"):
        mixer = make_mixer().to(precision.device)
    randomised = jittered(mixer, seed)
    generator = torch.Generator().manual_seed(seed)
    for probed in with_float32(precision):
        for length in check_lengths(budget):
            x = unit_rows((budget.batch_size, length, budget.d_model), generator, probed.device)
            for variant, module in (("initial", mixer), ("randomised", randomised)):
                for train in (True, False):
                    module.train(train)
                    mode = "train mode with gradients" if train else "eval mode"
                    label = (f"{variant} parameters, {mode}, T={length}, batch {budget.batch_size}, "
                             f"{probed.label}")
                    yield Probe(module, label, train, x, seed, probed)


def spread_cuts(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """One cut per sample: 0, 1 and T-2 always, the rest spread over the sequence, in shuffled order."""
    cuts = torch.linspace(0, length - 2, batch).round().long()
    cuts[: min(batch, 3)] = torch.tensor([0, 1, length - 2])[: min(batch, 3)]
    return cuts[torch.randperm(batch, generator=generator)]


def _gradient_leak(probe: Probe, x: torch.Tensor, y: torch.Tensor, judged: torch.Tensor,
                   generator: torch.Generator, own_sample_only: bool) -> Change | None:
    """(sample, input position) that receives gradient from outputs it must not influence."""
    weights = torch.randn(y.shape, generator=generator).to(y.device)
    if not y.requires_grad:
        return None

    def gradient_sizes(outputs: torch.Tensor) -> torch.Tensor | None:
        loss = (y.float() * weights * outputs[..., None]).sum()
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True, retain_graph=True)
        return None if grad is None else grad.detach().float().abs().amax(dim=-1)  # [B, T]
    size = gradient_sizes(judged)
    scale = float(size[judged].median()) if size is not None and judged.any() else 0.0
    if scale == 0.0:
        return None
    limit = probe.precision.rtol * scale + 1e-30
    leaking = (size > limit) & ~judged
    if own_sample_only and leaking.any():  # confirm with that sample's outputs alone: batch mixing is not a future leak
        sample = int(leaking.nonzero()[0, 0])
        alone = torch.zeros_like(judged)
        alone[sample] = judged[sample]
        size = gradient_sizes(alone)
        if size is None:
            return None
        leaking = torch.zeros_like(judged)
        leaking[sample] = (size[sample] > limit) & ~judged[sample]
    if not leaking.any():
        return None
    found = leaking.nonzero()
    sample, position = (int(i) for i in found[found[:, 1].argmin()])
    return Change(sample, position, float(size[sample, position]), float(size[sample, position]) / scale)


def _stateful(probe: Probe, first: torch.Tensor, before: dict[str, str], again: torch.Tensor) -> CheckResult | None:
    after = fingerprint(probe.module, "mixer")
    changed = changed_entries(before, after)
    if changed:
        return fail("causality", Status.LEAKY,
                    f"the mixer's state changed between two identical calls ({probe.label}): "
                    f"{', '.join(f'`{c}`' for c in changed[:5])}: the output must depend on this input only, "
                    "whatever ran before; keep no counters or memories across calls (a cache built once and "
                    "then reused is fine)", variant=probe.label, changed=changed[:20])
    change = first_change(first, again, torch.ones(first.shape[:2], dtype=torch.bool, device=first.device),
                          probe.precision)
    if change:
        return fail("causality", Status.LEAKY,
                    f"the same input gave a different output on a later call (sample {change.sample}, position "
                    f"{change.position}, change {change.change:.3g}; {probe.label}): the mixer keeps state "
                    "between calls or draws random numbers in this mode; it must be a function of its input",
                    variant=probe.label, position=change.position)
    return None


def _future_leak(probe: Probe, cuts: torch.Tensor, generator: torch.Generator) -> CheckResult | None:
    x = probe.x.clone().requires_grad_(probe.train)
    batch, length, _ = x.shape
    positions = torch.arange(length, device=x.device)
    judged = positions[None, :] <= cuts.to(x.device)[:, None]  # [B, T]: outputs that must not change
    noise = unit_rows(tuple(x.shape), generator, x.device)
    changed_future = torch.where(judged[..., None], probe.x, noise)
    first = probe.run(x)
    before = fingerprint(probe.module, "mixer")
    future = probe.run(changed_future)
    gradient = _gradient_leak(probe, x, first, judged, generator, True) if probe.train else None
    again = probe.run(probe.x.clone())
    stateful = _stateful(probe, first, before, again)
    if stateful:
        return stateful
    change = first_change(first, future, judged, probe.precision, cuts)
    if change:  # confirm with that sample alone, so that batch mixing is not reported as a future leak
        alone = probe.x.clone()
        alone[change.sample] = changed_future[change.sample]
        only = torch.zeros_like(judged)
        only[change.sample] = judged[change.sample]
        change = first_change(first, probe.run(alone), only, probe.precision)
    if change:
        cut = int(cuts[change.sample])
        return fail("causality", Status.LEAKY,
                    f"output at position {change.position} changed by {change.change:.3g} (relative "
                    f"{change.relative:.3g} to that position's output) when only inputs after position {cut} "
                    f"were perturbed ({probe.label}): the mixer reads the future; mask scores/kernels so "
                    "position t uses inputs <= t only", position=change.position, cut=cut, change=change.change,
                    relative=change.relative, variant=probe.label)
    if gradient:
        cut = int(cuts[gradient.sample])
        return fail("causality", Status.LEAKY,
                    f"gradient flows from outputs at positions <= {cut} to the input at position "
                    f"{gradient.position} (size {gradient.relative:.3g} relative to the typical gradient; "
                    f"{probe.label}): the mixer reads the future in its differentiable path",
                    position=gradient.position, cut=cut, relative=gradient.relative, variant=probe.label)
    return None


def check_causality(make_mixer: MixerFactory, candidate: Path, budget: Budget, seed: int,
                    precision: Precision | None = None) -> CheckResult:
    """(4) Outputs up to t ignore inputs after t, and identical calls give identical outputs and state."""
    precision = precision or precision_for(torch.device("cpu"))

    def run() -> CheckResult:
        generator = torch.Generator().manual_seed(seed + 1)
        for probe in probes(make_mixer, candidate, budget, seed, precision):
            cuts = spread_cuts(probe.x.shape[0], probe.x.shape[1], generator)
            with blame_candidate(candidate, f"forward ({probe.label})"):
                found = _future_leak(probe, cuts, generator)
            if found:
                return found
        return CheckResult("causality", True, "", {"lengths": check_lengths(budget), "batch": budget.batch_size,
                                                   "precision": precision.label, "rtol": precision.rtol})
    return timed("causality", run)


def _batch_leak(probe: Probe, generator: torch.Generator) -> CheckResult | None:
    x = probe.x.clone().requires_grad_(probe.train)
    batch, length, _ = x.shape
    changed = probe.x.clone()
    changed[PERTURBED_SAMPLE] = unit_rows((length, x.shape[-1]), generator, x.device)
    judged = torch.ones(batch, length, dtype=torch.bool, device=x.device)
    judged[PERTURBED_SAMPLE] = False
    first = probe.run(x)
    change = first_change(first, probe.run(changed), judged, probe.precision)
    if change:
        return fail("batch_independence", Status.LEAKY,
                    f"sample {change.sample}'s output at position {change.position} changed by {change.change:.3g} "
                    f"(relative {change.relative:.3g}) when only sample {PERTURBED_SAMPLE} was perturbed "
                    f"({probe.label}): the mixer mixes across the batch; drop batch statistics (BatchNorm, "
                    "means or sums over dim 0)", sample=change.sample, change=change.change,
                    relative=change.relative, variant=probe.label)
    gradient = _gradient_leak(probe, x, first, judged, generator, False) if probe.train else None
    if gradient:
        return fail("batch_independence", Status.LEAKY,
                    f"gradient flows from the other samples' outputs into sample {gradient.sample} (size "
                    f"{gradient.relative:.3g} relative to the typical gradient; {probe.label}): the mixer mixes "
                    "across the batch in its differentiable path", sample=gradient.sample, variant=probe.label)
    return None


def check_batch_independence(make_mixer: MixerFactory, candidate: Path, budget: Budget, seed: int,
                             precision: Precision | None = None) -> CheckResult:
    """(5) Perturbing one sequence of the batch leaves the others' outputs and gradients unchanged."""
    precision = precision or precision_for(torch.device("cpu"))

    def run() -> CheckResult:
        generator = torch.Generator().manual_seed(seed + 2)
        for probe in probes(make_mixer, candidate, budget, seed, precision):
            with blame_candidate(candidate, f"forward ({probe.label})"):
                found = _batch_leak(probe, generator)
            if found:
                return found
        return CheckResult("batch_independence", True, "", {"batch": budget.batch_size,
                                                            "precision": precision.label})
    return timed("batch_independence", run)
