"""Selective state-space scan (Mamba-2 style): input-dependent step, B and C over a diagonal decay.

Mamba (Gu and Dao, 2023) makes a diagonal linear state-space model selective: the step dt_t and the
maps B_t, C_t are computed from the token, so h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T and
y_t = C_t h_t + D x_t. As in Mamba-2 (Dao and Gu, "Transformers are SSMs", 2024), A is diagonal
with one value per head, B and C (state size 16) are shared by the heads, x, B and C pass a short
causal convolution, and the output is gated by silu(z) and RMS-normalised. A scalar decay per head
makes the chunked form plain matrix products with a state carried across chunks. Time O(T C d + T N d).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalShortConv(nn.Module):
    """Depthwise convolution over time that sees only the current and the kernel_size - 1 previous tokens."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, groups=channels, padding=kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, C]
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


def chunked_selective_scan(c: torch.Tensor, b: torch.Tensor, x: torch.Tensor, log_decay: torch.Tensor,
                           chunk: int) -> torch.Tensor:
    """y_t = c_t h_t with h_t = exp(log_decay_t) h_{t-1} + b_t^T x_t (h is [N, P] per head).

    c, b: [B, T, N] (shared by heads); x: [B, H, T, P]; log_decay: [B, H, T] (<= 0). Computed in float32.
    """
    batch, heads, length, _ = x.shape
    out_dtype = x.dtype
    pad = (-length) % chunk
    c, b = (F.pad(t.float(), (0, 0, 0, pad)).reshape(batch, 1, -1, chunk, t.shape[-1]) for t in (c, b))
    x = F.pad(x.float(), (0, 0, 0, pad)).reshape(batch, heads, -1, chunk, x.shape[-1])
    decay_from_start = F.pad(log_decay.float(), (0, pad)).reshape(batch, heads, -1, chunk, 1).cumsum(dim=-2)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=x.device).tril()
    pair_decay = (decay_from_start - decay_from_start.transpose(-1, -2)).masked_fill(~causal, float("-inf")).exp()
    intra = ((c @ b.transpose(-1, -2)) * pair_decay) @ x

    increments = (b * (decay_from_start[..., -1:, :] - decay_from_start).exp()).transpose(-1, -2) @ x
    chunk_decay = decay_from_start[..., -1:, :].exp()  # [B, H, N, 1, 1]
    state = torch.zeros_like(increments[:, :, 0])
    states_before = []
    for index in range(increments.shape[2]):
        states_before.append(state)
        state = chunk_decay[:, :, index] * state + increments[:, :, index]
    inter = (c * decay_from_start.exp()) @ torch.stack(states_before, dim=2)
    return (intra + inter).reshape(batch, heads, -1, x.shape[-1])[:, :, :length].to(out_dtype)


class Mixer(nn.Module):
    """Mamba-2 style selective SSM layer; extra keyword arguments are accepted and ignored (the contract)."""

    def __init__(self, d_model: int, n_heads: int, expand: int = 2, state_size: int = 16, conv_size: int = 4,
                 chunk_size: int = 64, **kwargs):
        super().__init__()
        inner = expand * d_model
        if inner % n_heads:
            raise ValueError(f"expand*d_model={inner} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.inner = inner
        self.state_size = state_size
        self.chunk_size = chunk_size
        self.in_proj = nn.Linear(d_model, 2 * inner + 2 * state_size + n_heads, bias=False)
        self.conv = CausalShortConv(inner + 2 * state_size, conv_size)
        # A = -exp(log_rate) in [-16, -1]; dt log-uniform in [1e-3, 1e-1] at init (Mamba's choices).
        self.log_rate = nn.Parameter(torch.empty(n_heads).uniform_(1.0, 16.0).log())
        dt = torch.exp(torch.empty(n_heads).uniform_(math.log(1e-3), math.log(1e-1)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.skip = nn.Parameter(torch.ones(n_heads))
        self.norm_weight = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(inner))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        z, xbc, dt = self.in_proj(x).split([self.inner, self.inner + 2 * self.state_size, self.n_heads], dim=-1)
        xs, b, c = F.silu(self.conv(xbc)).split([self.inner, self.state_size, self.state_size], dim=-1)
        step = F.softplus(dt.float() + self.dt_bias).transpose(1, 2)  # [B, H, T]
        log_decay = -self.log_rate.float().exp()[:, None] * step
        heads = xs.view(batch, length, self.n_heads, -1).transpose(1, 2).float()  # [B, H, T, P]
        y = chunked_selective_scan(c, b, heads * step[..., None], log_decay, self.chunk_size)
        y = (y + self.skip[:, None, None] * heads).transpose(1, 2).reshape(batch, length, self.inner)
        y = y * F.silu(z.float())
        y = y * torch.rsqrt(y.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * self.norm_weight
        return self.out_proj(y.to(z.dtype)).to(x.dtype)
