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


def apply_rotary(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) by angle position * base^(-2i/D); x is [B, H, T, D]."""
    length, dim = x.shape[-2], x.shape[-1]
    inv_freq = base ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angle = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * inv_freq
    cos, sin = angle.cos(), angle.sin()
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
        self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv_proj(x).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        q, k = apply_rotary(q, self.rope_base), apply_rotary(k, self.rope_base)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, -1)).to(x.dtype)
