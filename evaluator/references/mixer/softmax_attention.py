"""Causal multi-head softmax attention with rotary positions: the quadratic quality ceiling.

Every position mixes the values of all earlier positions, weighted by softmax(q.k / sqrt(d))
(Vaswani et al., "Attention Is All You Need", 2017). Rotary position embeddings (Su et al.,
RoFormer, 2021) turn the scores into functions of relative distance, since the backbone adds no
positions of its own. Time O(T^2 d) and, without a fused kernel, memory O(T^2) per head: this
reference is exempt from the sub-quadratic check and marks the quality the others chase.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


ROTARY_POSITIONS = 16384  # the table's length: every length a budget trains, scores or times at; longer ones compute it


def rotary_table(length: int, dim: int, base: float, device: torch.device | None = None) -> torch.Tensor:
    """cos and sin of position * base^(-2i/D), stacked: [2, length, D/2] in float32."""
    inv_freq = base ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angle = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq
    return torch.stack([angle.cos(), angle.sin()])


def apply_rotary(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) of x [B, H, T, D] by the angles of `table` (rotary_table)."""
    cos, sin = table
    first, second = x.float().chunk(2, dim=-1)
    rotated = torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
    return rotated.to(x.dtype)


class Mixer(nn.Module):
    """Multi-head causal attention; extra keyword arguments are accepted and ignored (the contract)."""

    def __init__(self, d_model: int, n_heads: int, rope_base: float = 10000.0, **kwargs):
        super().__init__()
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(f"d_model={d_model} must split into n_heads={n_heads} heads of even size "
                             "(rotary positions rotate channel pairs)")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.rope_base = rope_base
        # Computed once, not in every forward: compiled, the angles' cos and sin were recomputed for every
        # element of q and k (B x H times over), a third of a bytelm `gpu` training step (docs/gpu.md).
        self.register_buffer("rotary", rotary_table(ROTARY_POSITIONS, self.head_dim, rope_base), persistent=False)
        self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv_proj(x).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        table = (self.rotary[:, :length] if length <= self.rotary.shape[1]
                 else rotary_table(length, self.head_dim, self.rope_base, x.device))
        q, k = apply_rotary(q, table), apply_rotary(k, table)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, -1)).to(x.dtype)
