"""The functional checks of DESIGN.md §5 (2-6), run by the worker on a mixer factory, in order.

Each check returns a CheckResult whose reason tells the coder what to fix; a failed check
carries the status it implies in `details["status"]`. Exceptions raised by candidate code
become failed checks naming the candidate's line; memory exhaustion is left to propagate
(the worker reports it as oom). Causality and batch independence are judged on CPU in
float32, where kernels are deterministic, with a relative tolerance far below any usable
signal but above the round-off of FFT-style convolutions. Each is judged in train and eval
mode and on a copy with randomised parameters, so a leak gated by a zero-initialised weight
cannot hide; the trained model is checked again after training (`check_trained_causality`).
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from evaluator.backbone import MixerFactory, build_model, count_parameters
from evaluator.budgets import Budget
from evaluator.candidate_loader import CandidateError, blame_candidate
from evaluator.measure import autocast_for, count_forward_work, fit_exponent, time_call
from evaluator.records import CheckResult, Status

LEAK_TOLERANCE = 1e-5         # |change| / max|output| above this is a leak
CHECK_BATCH = 3
COMPLEXITY_REPEATS = 5


def _timed(name: str, run: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; candidate code that raised makes it fail as invalid, with the line."""
    start = time.perf_counter()
    try:
        result = run()
    except CandidateError as error:
        result = _fail(name, Status.INVALID, error.reason)
    result.seconds = time.perf_counter() - start
    return result


def _fail(name: str, status: Status, reason: str, **details: object) -> CheckResult:
    return CheckResult(name, False, reason, {"status": status.value, **details})


def check_instantiate(make_mixer: MixerFactory, candidate: Path, budget: Budget, vocab_size: int) -> CheckResult:
    """(2) The whole model builds with `Mixer(d_model, n_heads)` and fits the parameter budget."""
    def run() -> CheckResult:
        call = f"Mixer(d_model={budget.d_model}, n_heads={budget.n_heads})"
        with blame_candidate(candidate, call):
            model = build_model(make_mixer, vocab_size, budget)
        total = count_parameters(model)
        mixers = sum(count_parameters(block.mixer) for block in model.blocks)
        details = {"parameters": total, "mixer_parameters": mixers, "max_parameters": budget.max_parameters}
        if total > budget.max_parameters:
            return _fail("instantiate", Status.OVER_BUDGET,
                         f"the model has {total:,} parameters, {mixers:,} of them in the {budget.n_layers} mixers "
                         f"({mixers // budget.n_layers:,} each); the budget allows {budget.max_parameters:,} in all: "
                         "shrink the mixer's projections or state", **details)
        return CheckResult("instantiate", True, "", details)
    return _timed("instantiate", run)


def check_forward(make_mixer: MixerFactory, candidate: Path, budget: Budget) -> CheckResult:
    """(3) Output has the input's shape and dtype, is finite, and backward reaches every parameter."""
    def run() -> CheckResult:
        with blame_candidate(candidate, "Mixer construction"):
            mixer = make_mixer()
        # An odd second length catches code that silently assumes T is a multiple of a chunk size.
        for length in (budget.check_seq_len, budget.check_seq_len + 3):
            x = torch.randn(2, length, budget.d_model, requires_grad=True)
            with blame_candidate(candidate, f"forward on input [2, {length}, {budget.d_model}]"):
                y = mixer(x)
            problem = _output_problem(x, y)
            if problem:
                return _fail("forward", Status.INVALID, problem)
            mixer.zero_grad(set_to_none=True)
            with blame_candidate(candidate, "backward"):
                (y * torch.randn_like(y)).sum().backward()
            missing = [n for n, p in mixer.named_parameters() if p.requires_grad and p.grad is None]
            if missing:
                return _fail("forward", Status.INVALID,
                             f"backward reaches no gradient for parameter(s) {', '.join(missing[:10])}: "
                             "use them in forward, or remove them or set requires_grad=False")
            broken = [n for n, p in mixer.named_parameters() if p.grad is not None and not p.grad.isfinite().all()]
            if broken:
                return _fail("forward", Status.INVALID,
                             f"non-finite gradients for parameter(s) {', '.join(broken[:10])}: "
                             "look for divisions by zero, log/sqrt of non-positive values, or overflowing exp")
        return CheckResult("forward", True, "", {"lengths": [budget.check_seq_len, budget.check_seq_len + 3]})
    return _timed("forward", run)


def _output_problem(x: torch.Tensor, y: object) -> str:
    if not isinstance(y, torch.Tensor):
        return f"forward must return one tensor of shape {list(x.shape)}, but returned a {type(y).__name__}"
    if y.shape != x.shape:
        return (f"forward returned shape {list(y.shape)} for input shape {list(x.shape)}; "
                "the output must have the input's shape [B, T, d_model]")
    if y.dtype != x.dtype:
        return f"forward returned dtype {y.dtype} for input dtype {x.dtype}; cast the output back to x.dtype"
    bad = ~torch.isfinite(y.detach())
    if bad.any():
        batch, position, _ = (int(i) for i in bad.nonzero()[0])
        return (f"forward returned {int(bad.sum())} non-finite values of {y.numel()} "
                f"(first at batch {batch}, position {position}): guard divisions, logs, exps and square roots")
    return ""


def _variants(mixer: nn.Module, seed: int) -> Iterator[tuple[str, nn.Module]]:
    """The mixer in both modes, as initialised and with every parameter jittered."""
    jittered = copy.deepcopy(mixer)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in jittered.parameters():
            scale = max(float(p.abs().mean()), 0.02) if p.numel() else 0.0
            p.add_(0.5 * scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    for label, module in (("initial", mixer), ("randomised", jittered)):
        for mode in ("train", "eval"):
            module.train(mode == "train")
            yield f"{label} parameters, {mode} mode", module


def _forward(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # the same dropout masks in both calls: only the perturbation may differ
    with torch.no_grad():
        return module(x).float()


def _first_change(before: torch.Tensor, after: torch.Tensor, upto: int, scale: float) -> tuple[int, float] | None:
    """(first position <= upto whose output changed beyond tolerance, max change there), or None."""
    change = (after[:, : upto + 1] - before[:, : upto + 1]).abs().flatten(2).amax(dim=(0, 2))
    leaking = (change > LEAK_TOLERANCE * scale).nonzero()
    if len(leaking) == 0:
        return None
    position = int(leaking[0])
    return position, float(change[position])


def find_future_leak(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, perturb: Callable[
        [torch.Tensor, int], torch.Tensor], seed: int) -> tuple[int, int, float, float] | None:
    """Perturb inputs after several cut points t; (position, t, change, relative) of the first leak."""
    length = x.shape[1]
    base = _forward(module, x, seed)
    scale = float(base.abs().max()) or 1.0
    found = None
    for cut in sorted({0, 1, length // 4, length // 2, (3 * length) // 4, length - 2}):
        leak = _first_change(base, _forward(module, perturb(x, cut), seed), cut, scale)
        if leak and (found is None or leak[0] < found[0]):
            found = (leak[0], cut, leak[1], leak[1] / scale)
    return found


def _perturb_after(x: torch.Tensor, cut: int) -> torch.Tensor:
    changed = x.clone()
    changed[:, cut + 1:] = torch.randn_like(changed[:, cut + 1:])
    return changed


def check_causality(make_mixer: MixerFactory, candidate: Path, budget: Budget, seed: int) -> CheckResult:
    """(4) Outputs up to t are unchanged when inputs after t change, for several t."""
    def run() -> CheckResult:
        with blame_candidate(candidate, "Mixer construction"):
            mixer = make_mixer()
        x = torch.randn(CHECK_BATCH, budget.check_seq_len, budget.d_model, generator=torch.Generator().manual_seed(seed))
        for label, module in _variants(mixer, seed):
            with blame_candidate(candidate, f"forward ({label})"):
                leak = find_future_leak(module, x, _perturb_after, seed)
            if leak:
                position, cut, change, relative = leak
                return _fail("causality", Status.LEAKY,
                             f"output at position {position} changed by {change:.3g} (relative {relative:.3g}) "
                             f"when only inputs after position {cut} were perturbed ({label}): the mixer reads "
                             "the future; mask scores/kernels so position t uses inputs <= t only",
                             position=position, cut=cut, change=change, relative=relative, variant=label)
        return CheckResult("causality", True, "", {"tolerance": LEAK_TOLERANCE})
    return _timed("causality", run)


def find_batch_leak(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    replace: Callable[[torch.Tensor], torch.Tensor], seed: int) -> tuple[int, float, float] | None:
    """Replace sample 1 only; (another sample that changed, change, relative) or None."""
    base = _forward(module, x, seed)
    changed = x.clone()
    changed[1] = replace(changed[1])
    after = _forward(module, changed, seed)
    scale = float(base.abs().max()) or 1.0
    for sample in (0, 2):
        change = float((after[sample] - base[sample]).abs().max())
        if change > LEAK_TOLERANCE * scale:
            return sample, change, change / scale
    return None


def check_batch_independence(make_mixer: MixerFactory, candidate: Path, budget: Budget, seed: int) -> CheckResult:
    """(5) Perturbing one sequence of the batch leaves the others unchanged."""
    def run() -> CheckResult:
        with blame_candidate(candidate, "Mixer construction"):
            mixer = make_mixer()
        x = torch.randn(CHECK_BATCH, budget.check_seq_len, budget.d_model, generator=torch.Generator().manual_seed(seed))
        for label, module in _variants(mixer, seed):
            with blame_candidate(candidate, f"forward ({label})"):
                leak = find_batch_leak(module, x, torch.randn_like, seed)
            if leak:
                sample, change, relative = leak
                return _fail("batch_independence", Status.LEAKY,
                             f"sample {sample}'s output changed by {change:.3g} (relative {relative:.3g}) when only "
                             f"sample 1 was perturbed ({label}): the mixer mixes across the batch; drop batch "
                             "statistics (BatchNorm, means or sums over dim 0)", sample=sample, change=change,
                             relative=relative, variant=label)
        return CheckResult("batch_independence", True, "", {"tolerance": LEAK_TOLERANCE})
    return _timed("batch_independence", run)


def _best_forward_seconds(mixer: nn.Module, inputs: dict[int, torch.Tensor], budget: Budget,
                          device: torch.device) -> dict[int, float]:
    """Fastest of a few forwards at each length, round robin; stops at the check's time limit."""
    best: dict[int, float] = {}
    started = time.perf_counter()
    for _ in range(COMPLEXITY_REPEATS):
        for n, x in inputs.items():
            seconds = time_call(lambda: mixer(x), device)
            best[n] = min(best.get(n, seconds), seconds)
            if time.perf_counter() - started > budget.complexity_seconds:
                return best
    return best


def check_complexity(make_mixer: MixerFactory, candidate: Path, budget: Budget, device: torch.device,
                     limit: float, exempt: bool) -> CheckResult:
    """(6) Forward work at growing T fits T ** exponent with exponent <= limit (unless exempt).

    The verdict uses counted work (see measure.count_forward_work), the same on every machine;
    the measured time exponent is reported beside it, and a forward too slow to time at all
    within `budget.complexity_seconds` fails as well.
    """
    def run() -> CheckResult:
        with blame_candidate(candidate, "Mixer construction"):
            mixer = make_mixer().to(device).eval()
        lengths = list(budget.complexity_lengths)
        inputs = {n: torch.randn(1, n, budget.d_model, device=device) for n in lengths}
        with torch.no_grad(), autocast_for(device), blame_candidate(candidate, "forward at growing lengths"):
            work = [count_forward_work(mixer, inputs[n]) for n in lengths]  # also warms up every length
            best = _best_forward_seconds(mixer, inputs, budget, device)
        span = f"T = {', '.join(map(str, lengths))}"
        details = {"lengths": lengths, "work": work, "seconds": [best.get(n) for n in lengths], "limit": limit,
                   "exempt": exempt}
        if len(best) < len(lengths):
            slowest = max(best, key=best.get)
            return _fail("complexity", Status.TOO_SLOW,
                         f"forward took {best[slowest]:.2f} s at T={slowest}; timing it at {span} did not finish "
                         f"within {budget.complexity_seconds:g} s: avoid Python loops over single positions", **details)
        exponent = fit_exponent(lengths, work)
        time_exponent = fit_exponent(lengths, [best[n] for n in lengths])
        details.update(exponent=exponent, time_exponent=time_exponent)
        measured = f"T^{exponent:.2f} (time: T^{time_exponent:.2f}) over {span}"
        if exempt:
            return CheckResult("complexity", True, f"exempt (quadratic reference); work grows as {measured}", details)
        if exponent > limit:
            return _fail("complexity", Status.TOO_SLOW,
                         f"forward work grows as {measured}, above the limit T^{limit:g}: the task needs "
                         "sub-quadratic mixing; replace the T x T score matrix by a recurrent, chunked or "
                         "convolutional form", **details)
        return CheckResult("complexity", True, "", details)
    return _timed("complexity", run)


def check_trained_causality(model: nn.Module, tokens: torch.Tensor, vocab_size: int, candidate: Path,
                            seed: int) -> CheckResult:
    """After training, on real tokens: logits up to t ignore tokens after t, samples ignore each other.

    Runs in eval mode, as the metrics were computed, on the model's device in float32 (no
    autocast), so a leak that training learned to use, or one that only opens after many steps,
    is caught before results count.
    """
    def run() -> CheckResult:
        trained = model.eval()
        device = next(model.parameters()).device
        x = tokens[:CHECK_BATCH].to(device)
        generator = torch.Generator().manual_seed(seed)

        def random_tokens(like: torch.Tensor) -> torch.Tensor:
            return torch.randint(vocab_size, like.shape, generator=generator).to(device)

        def perturb(batch: torch.Tensor, cut: int) -> torch.Tensor:
            changed = batch.clone()
            changed[:, cut + 1:] = random_tokens(changed[:, cut + 1:])
            return changed
        with blame_candidate(candidate, "forward of the trained model"):
            leak = find_future_leak(trained, x, perturb, seed)
            batch_leak = find_batch_leak(trained, x, random_tokens, seed) if len(x) >= CHECK_BATCH else None
        if leak:
            position, cut, change, relative = leak
            return _fail("trained_causality", Status.LEAKY,
                         f"after training, logits at position {position} changed by {change:.3g} (relative "
                         f"{relative:.3g}) when only tokens after position {cut} were changed: the trained mixer "
                         "reads the future", position=position, cut=cut, change=change, relative=relative)
        if batch_leak:
            sample, change, relative = batch_leak
            return _fail("trained_causality", Status.LEAKY,
                         f"after training, sample {sample}'s logits changed by {change:.3g} (relative {relative:.3g}) "
                         "when only sample 1 changed: the trained mixer mixes across the batch",
                         sample=sample, change=change, relative=relative)
        return CheckResult("trained_causality", True, "", {"tolerance": LEAK_TOLERANCE})
    return _timed("trained_causality", run)
