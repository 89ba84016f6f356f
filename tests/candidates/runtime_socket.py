"""Connects to 127.0.0.1 from forward (tests bypass the screen)."""
import socket

import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
        return self.proj(x)
