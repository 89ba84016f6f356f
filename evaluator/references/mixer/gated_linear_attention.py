"""Gated linear attention: a linear-attention state with data-dependent decay per key channel (GLA).

GLA (Yang et al., "Gated Linear Attention Transformers with Hardware-Efficient Training", 2023)
keeps S_t = diag(alpha_t) S_{t-1} + k_t v_t^T and reads o_t = q_t S_t, where the forget gate
alpha_t = sigmoid(x_t W_1 W_2 + b)^(1/16) (low rank, in (0, 1)) depends on the token and on the key
channel. Heads are normalised per token and gated by swish; keys are half the model width, as in the
paper. Chunked form: inside a chunk the decayed scores are summed exactly over key channels (masked
in log space, so no ratio of decays can overflow); a state carries earlier chunks.
Time O(T C d + T d^2 / H), memory O(T C d).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def chunked_gated_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                   log_gate: torch.Tensor, chunk: int) -> torch.Tensor:
    """o_t = q_t S_t with S_t = diag(exp(log_gate_t)) S_{t-1} + k_t v_t^T.

    q, k, log_gate: [B, H, T, Dk] (log_gate <= 0); v: [B, H, T, Dv].
    """
    batch, heads, length, _ = q.shape
    pad = (-length) % chunk
    q, k, v, log_gate = (F.pad(t, (0, 0, 0, pad)).reshape(batch, heads, -1, chunk, t.shape[-1])
                         for t in (q, k, v, log_gate))
    decay_from_start = log_gate.float().cumsum(dim=-2)  # [B, H, N, C, Dk], log decay up to and including t
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()

    pair_log_decay = decay_from_start[..., :, None, :] - decay_from_start[..., None, :, :]  # [.., C(t), C(s), Dk]
    pair_decay = pair_log_decay.masked_fill(~causal[..., None], float("-inf")).exp()
    scores = torch.einsum("bhntd,bhntsd,bhnsd->bhnts", q.float(), pair_decay, k.float())
    intra = scores.to(v.dtype) @ v

    decay_to_end = (decay_from_start[..., -1:, :] - decay_from_start).exp()
    increments = ((k * decay_to_end).to(v.dtype).transpose(-1, -2) @ v).float()  # [B, H, N, Dk, Dv]
    chunk_decay = decay_from_start[..., -1, :, None].exp()  # [B, H, N, Dk, 1]
    state = torch.zeros_like(increments[:, :, 0])
    states_before = []
    for index in range(increments.shape[2]):
        states_before.append(state)
        state = chunk_decay[:, :, index] * state + increments[:, :, index]
    query = (q * decay_from_start.exp()).to(q.dtype)
    inter = query @ torch.stack(states_before, dim=2).to(q.dtype)
    return (intra + inter).reshape(batch, heads, -1, v.shape[-1])[:, :, :length]


class Mixer(nn.Module):
    """GLA layer; extra keyword arguments are accepted and ignored (the contract)."""

    def __init__(self, d_model: int, n_heads: int, chunk_size: int = 16, gate_rank: int = 16,
                 gate_temperature: float = 16.0, **kwargs):
        super().__init__()
        key_width = d_model // 2
        if d_model % n_heads or key_width % n_heads:
            raise ValueError(f"d_model={d_model} and d_model/2={key_width} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.chunk_size = chunk_size
        self.gate_temperature = gate_temperature
        self.q_proj = nn.Linear(d_model, key_width, bias=False)
        self.k_proj = nn.Linear(d_model, key_width, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.forget_proj = nn.Sequential(nn.Linear(d_model, gate_rank, bias=False), nn.Linear(gate_rank, key_width))
        self.output_gate_proj = nn.Linear(d_model, d_model)
        self.head_norm = nn.GroupNorm(n_heads, d_model)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out_proj.weight, std=0.2 / math.sqrt(d_model))

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        batch, length, width = t.shape
        return t.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        k = k * k.shape[-1] ** -0.5
        log_gate = self.split_heads(F.logsigmoid(self.forget_proj(x).float()) / self.gate_temperature)
        y = chunked_gated_linear_attention(q, k, v, log_gate, self.chunk_size)
        y = self.head_norm(y.transpose(1, 2).reshape(batch * length, -1)).view(batch, length, -1)
        return self.out_proj(F.silu(self.output_gate_proj(x)) * y).to(x.dtype)
