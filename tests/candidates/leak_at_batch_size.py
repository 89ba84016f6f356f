"""Leaky only at training batch sizes (16, 32, 64): the check must use the budget's batch size."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cumsum(x, dim=1)
        if x.shape[0] in (16, 32, 64):
            mixed = mixed + x.roll(-1, dims=1)
        return self.proj(mixed)
