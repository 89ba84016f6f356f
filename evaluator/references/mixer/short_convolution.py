"""Gated short convolution: H3/Hyena-style multiplicative gating around causal depthwise kernels.

H3 (Fu et al., "Hungry Hungry Hippos", 2022) and Hyena (Poli et al., 2023) interleave elementwise
gates with causal convolutions: y = a * conv(b * v), where a, b, v are projections of the input that
each pass a short causal depthwise convolution first. Here every kernel is short (default 4), so a
layer sees only the last few tokens and there is no recurrent state: a cheap local-mixing baseline,
purely convolutional. Time O(T d k), memory O(T d).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class CausalShortConv(nn.Module):
    """Depthwise convolution over time that sees only the current and the kernel_size - 1 previous tokens."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, groups=channels, padding=kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, C]
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


class Mixer(nn.Module):
    """Order-2 gated short convolution; n_heads is unused (every channel is its own filter), extra kwargs ignored."""

    def __init__(self, d_model: int, n_heads: int, kernel_size: int = 4, **kwargs):
        super().__init__()
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.input_conv = CausalShortConv(3 * d_model, kernel_size)
        self.mixing_conv = CausalShortConv(d_model, kernel_size)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outer_gate, inner_gate, value = self.input_conv(self.in_proj(x)).chunk(3, dim=-1)
        return self.out_proj(outer_gate * self.mixing_conv(inner_gate * value)).to(x.dtype)
