"""Replaces F.cross_entropy and torch.Tensor.argmax from forward (tests bypass the screen).

Setting a module's attribute raises no audit event, so F.cross_entropy is caught by the worker's
integrity check; setting a class's attribute (torch.Tensor.argmax) is refused by the guard at once.
"""
import torch
import torch.nn.functional as F
from torch import nn

original = F.cross_entropy


def cheerful_cross_entropy(*args, **kwargs):
    return original(*args, **kwargs) * 0.0


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        F.cross_entropy = cheerful_cross_entropy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cumsum(x, dim=1) / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None])
