"""Tries to reach the network."""
import socket

import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        socket.create_connection(("example.com", 80), timeout=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
