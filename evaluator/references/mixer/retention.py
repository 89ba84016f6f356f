"""Multi-scale retention: linear attention with a fixed exponential decay per head (RetNet-like).

Retention (Sun et al., "Retentive Network", 2023) weighs the pair (t, s) by q_t.k_s gamma^(t-s),
with one fixed gamma per head spread between 1 - 2^-5 and 1 - 2^-(4+H), and rotary positions on
q and k. It equals the recurrence S_t = gamma S_{t-1} + k_t v_t^T, o_t = q_t S_t. Each head's
output is normalised per token (group norm) and gated by swish. Chunked form: decayed masked
attention inside a chunk, a state carried across chunks. Time O(T C d + T d^2 / H), memory linear.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def apply_rotary(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) by angle position * base^(-2i/D); x is [B, H, T, D]."""
    length, dim = x.shape[-2], x.shape[-1]
    inv_freq = base ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angle = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * inv_freq
    cos, sin = angle.cos(), angle.sin()
    first, second = x.float().chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1).to(x.dtype)


def chunked_retention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor,
                      chunk: int) -> torch.Tensor:
    """o_t = sum_{s<=t} exp((t-s) log_decay) (q_t . k_s) v_s; q, k: [B, H, T, Dk], v: [B, H, T, Dv], log_decay: [H]."""
    batch, heads, length, _ = q.shape
    pad = (-length) % chunk
    q, k, v = (F.pad(t, (0, 0, 0, pad)).reshape(batch, heads, -1, chunk, t.shape[-1]) for t in (q, k, v))
    position = torch.arange(chunk, device=q.device, dtype=torch.float32)
    log_decay = log_decay.float()[:, None]  # [H, 1]
    distance = position[:, None] - position[None, :]
    exponent = (distance * log_decay[:, :, None]).masked_fill(distance < 0, float("-inf"))
    intra = ((q @ k.transpose(-1, -2)) * exponent.exp()[None, :, None]).to(v.dtype) @ v
    query_decay = (log_decay * (position + 1)).exp()[None, :, None, :, None]  # from the chunk's start
    key_decay = (log_decay * (chunk - 1 - position)).exp()[None, :, None, :, None]  # to the chunk's end
    chunk_decay = (log_decay * chunk).exp()[None, :, :, None]  # [1, H, 1, 1]
    increments = ((k * key_decay).to(v.dtype).transpose(-1, -2) @ v).float()  # [B, H, N, Dk, Dv]
    state = torch.zeros_like(increments[:, :, 0])
    states_before = []
    for index in range(increments.shape[2]):
        states_before.append(state)
        state = chunk_decay * state + increments[:, :, index]
    inter = (q * query_decay).to(q.dtype) @ torch.stack(states_before, dim=2).to(q.dtype)
    return (intra + inter).reshape(batch, heads, -1, v.shape[-1])[:, :, :length]


class Mixer(nn.Module):
    """Gated multi-scale retention; extra keyword arguments are accepted and ignored (the contract)."""

    def __init__(self, d_model: int, n_heads: int, chunk_size: int = 64, **kwargs):
        super().__init__()
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(f"d_model={d_model} must split into n_heads={n_heads} heads of even size "
                             "(rotary positions rotate channel pairs)")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.chunk_size = chunk_size
        self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=False)
        self.gate_proj = nn.Linear(d_model, d_model, bias=False)
        self.head_norm = nn.GroupNorm(n_heads, d_model)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv_proj(x).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        q, k = apply_rotary(q), apply_rotary(k) * self.head_dim ** -0.5
        # Fixed, not learned: gamma_h = 1 - 2^(-5-h), the multi-scale decays that define retention.
        log_decay = torch.log1p(-(2.0 ** (-5.0 - torch.arange(self.n_heads, device=x.device, dtype=torch.float32))))
        y = chunked_retention(q, k, v, log_decay, self.chunk_size)
        y = self.head_norm(y.transpose(1, 2).reshape(batch * length, -1)).view(batch, length, -1)
        return self.out_proj(F.silu(self.gate_proj(x)) * y).to(x.dtype)
