"""Gated delta rule (Gated DeltaNet): the delta-rule state with a data-dependent decay per head.

Gated DeltaNet (Yang, Kautz and Hatamizadeh, "Gated Delta Networks", 2024) combines Mamba-2's
forgetting with DeltaNet's targeted overwrite: S_t = alpha_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t
k_t v_t^T (transposed here), o_t = S_t q_t, with alpha_t = exp(-exp(A) softplus(.)) per head and
beta_t = sigmoid(.). Keys and queries are L2-normalised after a short causal convolution; the
output is RMS-normalised per head and gated by swish. Chunked WY/UT form: decays enter as
masked log-space ratios, one unit-triangular solve per chunk, the state carried across chunks.
Time O(T C d + T d^2 / H).
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


def chunked_gated_delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                             log_alpha: torch.Tensor, chunk: int) -> torch.Tensor:
    """o_t = S_t^T q_t with S_t = alpha_t S_{t-1} + k_t beta_t (v_t - alpha_t S_{t-1}^T k_t)^T (S is [Dk, Dv]).

    q, k: [B, H, T, Dk]; v: [B, H, T, Dv]; beta, log_alpha: [B, H, T] (log_alpha <= 0). Computed in float32.
    """
    batch, heads, length, _ = q.shape
    out_dtype = v.dtype
    pad = (-length) % chunk
    q, k, v = (F.pad(t.float(), (0, 0, 0, pad)).reshape(batch, heads, -1, chunk, t.shape[-1]) for t in (q, k, v))
    beta, log_alpha = (F.pad(t.float(), (0, pad)).reshape(batch, heads, -1, chunk, 1) for t in (beta, log_alpha))
    decay_from_start = log_alpha.cumsum(dim=-2)  # [B, H, N, C, 1]: log of alpha_1 ... alpha_t within the chunk
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    pair_decay = (decay_from_start - decay_from_start.transpose(-1, -2)).masked_fill(~causal, float("-inf")).exp()

    # Corrections u_t = beta_t (v_t - alpha_t S_{t-1}^T k_t) solve (I + A) U = beta V - beta gamma K S_0 with
    # A_ts = beta_t (gamma_t / gamma_s) k_t.k_s for s < t, gamma the decay since the chunk's start.
    interaction = (beta * pair_decay * (k @ k.transpose(-1, -2)).float()).tril(-1)
    rhs = torch.cat([beta * v, beta * decay_from_start.exp() * k], dim=-1)
    solved = torch.linalg.solve_triangular(interaction, rhs, upper=False, unitriangular=True)
    pseudo_values, write_keys = solved.split([v.shape[-1], k.shape[-1]], dim=-1)

    keys_to_end = k * (decay_from_start[..., -1:, :] - decay_from_start).exp()
    chunk_decay = decay_from_start[..., -1:, :].exp()  # [B, H, N, 1, 1]
    state = torch.zeros(batch, heads, k.shape[-1], v.shape[-1], device=q.device, dtype=torch.float32)
    states_before, corrections = [], []
    for index in range(q.shape[2]):
        correction = pseudo_values[:, :, index] - write_keys[:, :, index] @ state
        states_before.append(state)
        corrections.append(correction)
        state = chunk_decay[:, :, index] * state + keys_to_end[:, :, index].transpose(-1, -2) @ correction
    causal_scores = (q @ k.transpose(-1, -2)) * pair_decay  # the diagonal too: o_t reads S_t, after its own write
    queries = q * decay_from_start.exp()
    out = queries @ torch.stack(states_before, dim=2) + causal_scores @ torch.stack(corrections, dim=2)
    return out.reshape(batch, heads, -1, v.shape[-1])[:, :, :length].to(out_dtype)


def head_rms_norm(y: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise each head of each token to unit root-mean-square, then scale per channel."""
    y32 = y.float()
    return (y32 * torch.rsqrt(y32.pow(2).mean(dim=-1, keepdim=True) + eps)).to(y.dtype) * weight


class Mixer(nn.Module):
    """Gated DeltaNet layer; extra keyword arguments are accepted and ignored (the contract)."""

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
        self.decay_proj = nn.Linear(d_model, n_heads, bias=False)
        self.output_gate_proj = nn.Linear(d_model, d_model, bias=False)
        self.norm_weight = nn.Parameter(torch.ones(self.head_dim))
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))
        # Mamba-2 style decay rates: A in (0, 16], step sizes dt log-uniform in [1e-3, 1e-1] at init.
        self.log_rate = nn.Parameter(torch.empty(n_heads).uniform_(1.0, 16.0).log())
        dt = torch.exp(torch.empty(n_heads).uniform_(math.log(1e-3), math.log(1e-1)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = F.silu(self.qkv_conv(self.qkv_proj(x))).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        q, k = F.normalize(q.float(), dim=-1, eps=1e-6), F.normalize(k.float(), dim=-1, eps=1e-6)
        beta = torch.sigmoid(self.beta_proj(x).float()).transpose(1, 2)  # [B, H, T]
        step = F.softplus(self.decay_proj(x).float() + self.dt_bias)
        log_alpha = (-self.log_rate.float().exp() * step).transpose(1, 2)  # [B, H, T], <= 0
        y = chunked_gated_delta_rule(q, k, v, beta, log_alpha, self.chunk_size)
        y = head_rms_norm(y.transpose(1, 2), self.norm_weight).reshape(batch, length, -1)
        gate = F.silu(self.output_gate_proj(x))
        return self.out_proj(y * gate).to(x.dtype)
