"""Leaky after 100 calls, counting in a module-level dict rather than on the module."""
import torch
from torch import nn

SEEN = {"calls": 0}


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN["calls"] += 1
        mixed = torch.cumsum(x, dim=1)
        if SEEN["calls"] > 100:
            mixed = mixed + x.roll(-1, dims=1)
        return self.proj(mixed)
