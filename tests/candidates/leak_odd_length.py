"""Leaky only at lengths that are not powers of two (padding paths are where real leaks hide)."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        mixed = torch.cumsum(x, dim=1)
        if length & (length - 1):
            mixed = mixed + x.roll(-1, dims=1)
        return self.proj(mixed)
