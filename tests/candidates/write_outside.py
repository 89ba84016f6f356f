"""Tries to write a file outside its work directory."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        with open("/tmp/archlab-escaped.txt", "w") as handle:
            handle.write("escaped")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
