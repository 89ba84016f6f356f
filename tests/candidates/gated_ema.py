"""Valid and unusual: a gated exponential moving average with a learnable decay per channel.

h_t = a * h_{t-1} + (1 - a) * u_t with a = sigmoid(rate) per channel, computed in parallel by a
scan in log space over chunks (stable for any length), then gated by the input.
"""
import torch
import torch.nn.functional as F
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, chunk: int = 64, **kwargs):
        super().__init__()
        self.chunk = chunk
        self.inp = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.rate = nn.Parameter(torch.linspace(-2.0, 4.0, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        decay = torch.sigmoid(self.rate)                       # [D] in (0, 1)
        u = (1 - decay) * self.inp(x)
        state = torch.zeros(batch, width, dtype=x.dtype, device=x.device)
        outputs = []
        for start in range(0, length, self.chunk):
            piece = u[:, start:start + self.chunk]             # [B, C, D]
            steps = torch.arange(1, piece.shape[1] + 1, device=x.device, dtype=x.dtype)
            powers = decay[None, :] ** steps[:, None]          # a^1 .. a^C  [C, D]
            lags = steps[:, None] - steps[None, :]             # i - j
            kernel = torch.where(lags[..., None] >= 0, decay ** lags.clamp(min=0)[..., None], 0.0)  # [C, C, D]
            within = torch.einsum("ijd,bjd->bid", kernel, piece)
            outputs.append(within + powers[None] * state[:, None])
            state = outputs[-1][:, -1]
        h = torch.cat(outputs, dim=1)
        return self.out(F.silu(self.gate(x)) * h)
