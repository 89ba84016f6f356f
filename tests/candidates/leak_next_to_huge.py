"""A leak of relative size 1e-4, next to one huge output value that used to set the tolerance for all."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(torch.cumsum(x, dim=1)) + 1e-4 * x.roll(-1, dims=1)
        spike = torch.zeros_like(out)
        spike[:, -1, 0] = 1e6
        return out + spike
