"""Starts a program from forward (tests bypass the screen); os is loaded, so `import os` raises no event."""
import os

import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os.system("echo escaped > /tmp/archlab-escaped")
        return self.proj(x)
