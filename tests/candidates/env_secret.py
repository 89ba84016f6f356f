"""Tries to read a credential from the environment."""
import os

import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        self.key = os.environ.get("OPENAI_API_KEY", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
