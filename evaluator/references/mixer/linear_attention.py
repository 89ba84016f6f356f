"""Causal linear attention with an elu+1 feature map, normalised, in chunked-parallel form.

Softmax(q.k) is replaced by a positive kernel phi(q).phi(k) with phi = elu + 1 (Katharopoulos et
al., "Transformers are RNNs", 2020), so the past folds into a running state sum_s phi(k_s) v_s^T
of fixed size; each output is phi(q_t) S_t divided by phi(q_t) z_t with z_t = sum_s phi(k_s).
Chunked form: exact masked attention inside each chunk, and the states of earlier chunks (a
prefix sum of per-chunk states, no loop) for the rest. Time O(T C d + T d^2 / H), memory linear in T.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def chunked_causal_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                    chunk: int) -> torch.Tensor:
    """sum_{s<=t} (q_t . k_s) v_s for every t; q, k: [B, H, T, Dk], v: [B, H, T, Dv]."""
    batch, heads, length, _ = q.shape
    pad = (-length) % chunk
    q, k, v = (F.pad(t, (0, 0, 0, pad)).reshape(batch, heads, -1, chunk, t.shape[-1]) for t in (q, k, v))
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    intra = (q @ k.transpose(-1, -2)).masked_fill(~causal, 0.0) @ v
    chunk_states = (k.transpose(-1, -2) @ v).float()  # [B, H, N, Dk, Dv]
    earlier = torch.cat([torch.zeros_like(chunk_states[:, :, :1]), chunk_states[:, :, :-1]], dim=2)
    states_before = earlier.cumsum(dim=2)
    inter = q @ states_before.to(q.dtype)
    return (intra + inter).reshape(batch, heads, -1, v.shape[-1])[:, :, :length]


class Mixer(nn.Module):
    """Multi-head normalised linear attention; extra keyword arguments are accepted and ignored."""

    def __init__(self, d_model: int, n_heads: int, chunk_size: int = 64, eps: float = 1e-6, **kwargs):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.chunk_size = chunk_size
        self.eps = eps
        self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv_proj(x).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        q, k = F.elu(q) + 1.0, F.elu(k) + 1.0
        # A column of ones next to v yields the normaliser phi(q_t) . sum_s phi(k_s) in the same pass.
        v_and_one = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
        mixed = chunked_causal_linear_attention(q, k, v_and_one, self.chunk_size).float()
        y = mixed[..., :-1] / (mixed[..., -1:] + self.eps)
        y = y.transpose(1, 2).reshape(batch, length, -1).to(x.dtype)
        return self.out_proj(y).to(x.dtype)
