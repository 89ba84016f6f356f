"""Tries to forge its result by writing eval.json itself."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        torch.save({"status": "ok", "metrics": {"accuracy": 1.0}}, "eval.json")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
