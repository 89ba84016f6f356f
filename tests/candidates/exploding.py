"""Diverges: a gain exp(1e4 * g) with g starting at zero blows up after the first optimiser steps."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        self.log_gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cumsum(x, dim=1)) * torch.exp(1e4 * self.log_gain)
