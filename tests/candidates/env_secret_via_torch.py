"""Reaches the environment through `torch.os`, which a name-based screen may not see.

If a secret were visible to the worker, forward would fail loudly with it in the message.
"""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        self.secret = torch.os.environ.get("ARCHLAB_TEST_SECRET", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.secret:
            raise RuntimeError(f"secret visible: {self.secret}")
        return self.proj(torch.cumsum(x, dim=1))
