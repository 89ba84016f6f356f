"""Leaky only at the longest training lengths (64, 128, 512), never at short check lengths."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cumsum(x, dim=1)
        if x.shape[1] in (64, 128, 512):
            mixed = mixed + x.roll(-1, dims=1)
        return self.proj(mixed)
