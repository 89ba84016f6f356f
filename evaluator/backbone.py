"""The fixed model around a candidate mixer, so candidates differ only in how tokens mix.

Token embedding, `n_layers` pre-norm residual blocks `x + mixer(norm(x))`, `x + mlp(norm(x))`,
a final norm and an output head tied to the embedding. No positional embedding: order is the
mixer's business. The backbone returns logits; the loss is the harness's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from evaluator.budgets import Budget
from evaluator.candidate_loader import ContractError
from evaluator.integrity import torch_interference

MixerFactory = Callable[[], nn.Module]


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(dim=-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


class MLP(nn.Module):
    def __init__(self, d_model: int, ratio: int):
        super().__init__()
        self.up = nn.Linear(d_model, ratio * d_model, bias=False)
        self.down = nn.Linear(ratio * d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


def mixer_input(block: "Block", x: torch.Tensor) -> torch.Tensor:
    return block.mixer_norm(x)


def block_output(block: "Block", x: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """The residual add of the mixer's output, then the MLP's residual branch."""
    x = x + mixed
    return x + block.mlp(block.mlp_norm(x))


def output_logits(backbone: "Backbone", x: torch.Tensor) -> torch.Tensor:
    return F.linear(backbone.final_norm(x), backbone.embedding.weight)


@dataclass(frozen=True)
class BackboneParts:
    """The backbone's own computations around the mixer, as callables: evaluator/compile.py swaps in compiled
    versions on CUDA. The mixer's call stays outside them, so the checks judge the very mixer graph that trains."""

    mixer_input: Callable[["Block", torch.Tensor], torch.Tensor] = mixer_input
    block_output: Callable[["Block", torch.Tensor, torch.Tensor], torch.Tensor] = block_output
    output_logits: Callable[["Backbone", torch.Tensor], torch.Tensor] = output_logits


EAGER_PARTS = BackboneParts()


class Block(nn.Module):
    def __init__(self, mixer: nn.Module, d_model: int, mlp_ratio: int, parts: BackboneParts = EAGER_PARTS):
        super().__init__()
        self.mixer_norm, self.mixer = RMSNorm(d_model), mixer
        self.mlp_norm, self.mlp = RMSNorm(d_model), MLP(d_model, mlp_ratio)
        self.parts = parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = exact_tensor(self.mixer(self.parts.mixer_input(self, x)), "the mixer's forward")
        return self.parts.block_output(self, x, mixed)


class Backbone(nn.Module):
    def __init__(self, make_mixer: MixerFactory, vocab_size: int, d_model: int, n_layers: int, mlp_ratio: int,
                 parts: BackboneParts = EAGER_PARTS):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(make_mixer(), d_model, mlp_ratio, parts) for _ in range(n_layers))
        self.final_norm = RMSNorm(d_model)
        self.parts = parts
        self._init_own_weights(n_layers)

    def _init_own_weights(self, n_layers: int) -> None:
        """GPT-2 style init of the backbone's layers; the mixers keep the init their authors chose."""
        nn.init.normal_(self.embedding.weight, std=0.02)
        for block in self.blocks:
            nn.init.normal_(block.mlp.up.weight, std=0.02)
            nn.init.normal_(block.mlp.down.weight, std=0.02 / math.sqrt(2 * n_layers))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x)
        return self.parts.output_logits(self, x)


def exact_tensor(value: object, what: str) -> torch.Tensor:
    """`value` if it is a plain torch.Tensor; a subclass (with its own __torch_function__) would change what
    every later comparison, argmax and float conversion of the harness answers."""
    if type(value) is torch.Tensor:
        return value
    if isinstance(value, torch.Tensor):
        raise ContractError(f"{what} returned a {type(value).__module__}.{type(value).__qualname__} (a torch.Tensor "
                            "subclass); return a plain tensor")
    raise ContractError(f"{what} returned a {type(value).__name__}, not a tensor")


def forward_exactly(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The backbone's logits, refused unless they are a plain tensor and no mode or global hook is active.

    Nothing of the candidate's runs between the forward returning and these checks, so a mode that
    would pop itself during the harness's next torch call is still seen here.
    """
    logits = model(tokens)
    interference = torch_interference()
    if interference:
        raise ContractError(interference)
    return exact_tensor(logits, "the model")


def build_model(make_mixer: MixerFactory, vocab_size: int, budget: Budget,
                parts: BackboneParts = EAGER_PARTS) -> Backbone:
    return Backbone(make_mixer, vocab_size, budget.d_model, budget.n_layers, budget.mlp_ratio, parts)


def count_parameters(module: nn.Module) -> int:
    """Distinct parameters (the tied head is the embedding, counted once), all of them plain.

    A Parameter subclass could answer `numel()` with anything and intercept the optimizer's calls.
    """
    for name, p in module.named_parameters():
        if type(p) is not nn.Parameter:
            raise ContractError(f"parameter {name} is a {type(p).__qualname__}; use torch.nn.Parameter itself")
    for name, b in module.named_buffers():
        if type(b) is not torch.Tensor:
            raise ContractError(f"buffer {name} is a {type(b).__qualname__}; register plain tensors")
    return sum(p.numel() for p in module.parameters())
