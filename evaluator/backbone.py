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


def between_blocks(block: "Block", following: "Block", x: torch.Tensor,
                   mixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`block`'s output and `following`'s mixer input: one piece, since no mixer runs between them."""
    x = block_output(block, x, mixed)
    return x, mixer_input(following, x)


def last_block_logits(block: "Block", backbone: "Backbone", x: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """The last block's output, then the final norm and the output head."""
    return output_logits(backbone, block_output(block, x, mixed))


@dataclass(frozen=True)
class BackboneParts:
    """The backbone's own computations between the mixers' calls, as callables: evaluator/compile.py swaps in
    compiled versions on CUDA. Each part runs everything from one mixer's output to the next mixer's input, so
    the model is as few pieces as the mixers allow, and the mixer's call stays outside them: the checks judge the
    very mixer graph that trains."""

    first_input: Callable[["Block", torch.Tensor], torch.Tensor] = mixer_input
    between_blocks: Callable[["Block", "Block", torch.Tensor, torch.Tensor],
                             tuple[torch.Tensor, torch.Tensor]] = between_blocks
    last_block_logits: Callable[["Block", "Backbone", torch.Tensor, torch.Tensor], torch.Tensor] = last_block_logits


EAGER_PARTS = BackboneParts()


class Block(nn.Module):
    """One residual block's layers; `Backbone.forward` runs them through its parts (a block has no forward of its
    own, since a part spans the end of one block and the start of the next)."""

    def __init__(self, mixer: nn.Module, d_model: int, mlp_ratio: int):
        super().__init__()
        self.mixer_norm, self.mixer = RMSNorm(d_model), mixer
        self.mlp_norm, self.mlp = RMSNorm(d_model), MLP(d_model, mlp_ratio)


class Backbone(nn.Module):
    def __init__(self, make_mixer: MixerFactory, vocab_size: int, d_model: int, n_layers: int, mlp_ratio: int,
                 parts: BackboneParts = EAGER_PARTS):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"the backbone needs at least one block, got n_layers={n_layers}")
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(make_mixer(), d_model, mlp_ratio) for _ in range(n_layers))
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
        *inner, last = self.blocks
        x = self.embedding(tokens)
        mixer_in = self.parts.first_input(self.blocks[0], x)
        for block, following in zip(inner, self.blocks[1:]):
            mixed = exact_tensor(block.mixer(mixer_in), "the mixer's forward")
            x, mixer_in = self.parts.between_blocks(block, following, x, mixed)
        mixed = exact_tensor(last.mixer(mixer_in), "the mixer's forward")
        return self.parts.last_block_logits(last, self, x, mixed)


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
