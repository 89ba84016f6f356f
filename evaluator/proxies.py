"""Zero-cost proxies: scores of a candidate at initialisation, on a few training batches, before training.

Runs inside the worker (it runs candidate code), on a model built as the trained one is but
thrown away after, so training is unchanged. Each proxy costs one forward and at most one backward
per batch (well under a second at the `cpu` budgets). From the training-free NAS literature:

- `grad_norm`: L2 norm of the loss gradient over all parameters (gradient-based; Abdelfattah et al. 2021);
- `snip`: sum of |weight * gradient| (connection sensitivity; Lee et al. 2019);
- `hidden_logdet`: log-determinant of the correlation matrix of the final hidden states over
  tokens: how distinct the representations of different contexts are (activation-based, the
  hidden-covariance score proposed for recurrent cells; Mellor et al. 2021, Serianni & Kalita 2023);
- `effective_rank`: exp of the entropy of the normalised singular values of those hidden states,
  over d_model (label-free, SVD-based).

Whether any of them predicts trained fitness is an empirical question for each lab: the loop
records them for every candidate and measures their rank correlation with fitness
(`agents.yardstick`); they order or skip training only when configured.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from evaluator.backbone import block_output, exact_tensor, mixer_input
from evaluator.candidate_loader import blame_candidate
from evaluator.harness import masked_cross_entropy
from evaluator.tasks.base import Batch

PROXY_BATCHES = 2
MAX_HIDDEN_ROWS = 2048  # tokens whose hidden states enter the covariance and the SVD


def _hidden(model: nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(final hidden states [B, T, d], logits) through the backbone's own layers."""
    x = model.embedding(tokens)
    for i, block in enumerate(model.blocks):
        mixed = exact_tensor(block.mixer(mixer_input(block, x)), f"the mixer's forward (layer {i})")
        x = block_output(block, x, mixed)
    hidden = model.final_norm(x)
    return hidden, nn.functional.linear(hidden, model.embedding.weight)


def _hidden_scores(hidden: torch.Tensor) -> dict[str, float]:
    rows = hidden.detach().float().reshape(-1, hidden.shape[-1])[:MAX_HIDDEN_ROWS]
    centred = rows - rows.mean(dim=0, keepdim=True)
    std = centred.std(dim=0, keepdim=True).clamp_min(1e-6)
    correlation = (centred / std).T @ (centred / std) / max(1, rows.shape[0] - 1)
    eye = torch.eye(correlation.shape[0])
    logdet = torch.linalg.slogdet(correlation + 1e-3 * eye)[1]
    singular = torch.linalg.svdvals(centred)
    p = singular / singular.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"hidden_logdet": float(logdet), "effective_rank": float(torch.exp(entropy)) / rows.shape[1]}


def zero_cost_proxies(model: nn.Module, train_batch: Callable[[int], Batch], device: torch.device,
                      candidate: Path, batches: int = PROXY_BATCHES) -> dict[str, float | None]:
    """The proxies of a freshly built model, averaged over the first `batches` training batches."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    totals: dict[str, float] = {}
    for step in range(batches):
        batch = train_batch(step).to(device)
        model.zero_grad(set_to_none=True)
        with blame_candidate(candidate, "the zero-cost proxies at initialisation"):
            hidden, logits = _hidden(model, batch.inputs)
            loss = masked_cross_entropy(logits, batch.targets)
            loss.backward()
        grads = [(p, p.grad) for p in params if p.grad is not None]
        scores = {
            "grad_norm": math.sqrt(sum(float(g.float().pow(2).sum()) for _, g in grads)),
            "snip": sum(float((p.detach() * g).abs().sum()) for p, g in grads),
            **_hidden_scores(hidden.cpu()),
        }
        for name, value in scores.items():
            totals[name] = totals.get(name, 0.0) + value / batches
    model.zero_grad(set_to_none=True)
    return {n: (v if math.isfinite(v) else None) for n, v in totals.items()}
