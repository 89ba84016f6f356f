"""Exhausts memory: forward keeps allocating and filling large tensors."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hoard = []
        for _ in range(1000):
            hoard.append(torch.ones(2**28))  # 1 GiB each
        return self.proj(x) + hoard[-1][0]
