"""Over budget: a huge hidden projection."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.up = nn.Linear(d_model, 16384)
        self.down = nn.Linear(16384, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(torch.cumsum(x, dim=1))))
