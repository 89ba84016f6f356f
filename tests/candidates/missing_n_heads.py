"""Breaks the contract: __init__ takes no n_heads."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
