"""Leaky only while training with gradients, and only in value (the leak is detached, so no gradient shows it)."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cumsum(x, dim=1)
        if self.training and torch.is_grad_enabled():
            mixed = mixed + x.roll(-1, dims=1).detach()
        return self.proj(mixed)
