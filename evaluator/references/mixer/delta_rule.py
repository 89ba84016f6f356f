"""Delta rule (DeltaNet): a fast-weight state corrected towards each new value, not merely added to.

DeltaNet (Schlag et al., 2021; made parallel by Yang et al., "Parallelizing Linear Transformers with
the Delta Rule over Sequence Length", 2024) updates S_t = S_{t-1} + beta_t (v_t - S_{t-1} k_t) k_t^T
with L2-normalised keys and a per-head write strength beta_t = sigmoid(.), and reads o_t = S_t q_t.
Queries, keys and values pass a short causal convolution and SiLU; heads are RMS-normalised.
Chunked WY/UT form: inside a chunk one unit-triangular solve turns the sequential corrections into
matrix products; only the state is carried from chunk to chunk. Time O(T C d + T d^2 / H).
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


def chunked_delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                       chunk: int) -> torch.Tensor:
    """o_t = S_t^T q_t with S_t = S_{t-1} + k_t beta_t (v_t - S_{t-1}^T k_t)^T (S is [Dk, Dv]).

    q, k: [B, H, T, Dk]; v: [B, H, T, Dv]; beta: [B, H, T]. Computed in float32.
    """
    batch, heads, length, _ = q.shape
    out_dtype = v.dtype
    pad = (-length) % chunk
    q, k, v = (F.pad(t.float(), (0, 0, 0, pad)).reshape(batch, heads, -1, chunk, t.shape[-1]) for t in (q, k, v))
    beta = F.pad(beta.float(), (0, pad)).reshape(batch, heads, -1, chunk, 1)
    earlier = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril(-1)

    # Within a chunk the corrections u_t = beta_t (v_t - S_{t-1}^T k_t) solve (I + A) U = beta (V - K S_0),
    # A_ts = beta_t k_t.k_s for s < t, so U = pseudo_values - write_keys @ S_0 for each chunk.
    interaction = (beta * (k @ k.transpose(-1, -2)).float()).masked_fill(~earlier, 0.0)
    solved = torch.linalg.solve_triangular(interaction, torch.cat([beta * v, beta * k], dim=-1),
                                           upper=False, unitriangular=True)
    pseudo_values, write_keys = solved.split([v.shape[-1], k.shape[-1]], dim=-1)

    state = torch.zeros(batch, heads, k.shape[-1], v.shape[-1], device=q.device, dtype=torch.float32)
    states_before, corrections = [], []
    for index in range(q.shape[2]):
        correction = pseudo_values[:, :, index] - write_keys[:, :, index] @ state
        states_before.append(state)
        corrections.append(correction)
        state = state + k[:, :, index].transpose(-1, -2) @ correction
    causal_scores = (q @ k.transpose(-1, -2)).tril()  # the diagonal too: o_t reads S_t, after its own write
    out = q @ torch.stack(states_before, dim=2) + causal_scores @ torch.stack(corrections, dim=2)
    return out.reshape(batch, heads, -1, v.shape[-1])[:, :, :length].to(out_dtype)


def head_rms_norm(y: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise each head of each token to unit root-mean-square, then scale per channel."""
    y32 = y.float()
    return (y32 * torch.rsqrt(y32.pow(2).mean(dim=-1, keepdim=True) + eps)).to(y.dtype) * weight


class Mixer(nn.Module):
    """DeltaNet layer; extra keyword arguments are accepted and ignored (the contract)."""

    def __init__(self, d_model: int, n_heads: int, chunk_size: int = 64, conv_size: int = 4, **kwargs):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.chunk_size = chunk_size
        self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=False)
        self.qkv_conv = CausalShortConv(3 * d_model, conv_size)
        self.beta_proj = nn.Linear(d_model, n_heads)
        self.norm_weight = nn.Parameter(torch.ones(self.head_dim))
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = F.silu(self.qkv_conv(self.qkv_proj(x))).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        q, k = F.normalize(q.float(), dim=-1, eps=1e-6), F.normalize(k.float(), dim=-1, eps=1e-6)
        beta = torch.sigmoid(self.beta_proj(x).float()).transpose(1, 2)  # [B, H, T]
        y = chunked_delta_rule(q, k, v, beta, self.chunk_size)
        y = head_rms_norm(y.transpose(1, 2), self.norm_weight).reshape(batch, length, -1)
        return self.out_proj(y).to(x.dtype)
