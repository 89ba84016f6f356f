"""Forges metrics without forbidden syntax: forward returns a torch.Tensor subclass whose __torch_function__
answers every comparison with True, so predictions would always "equal" the targets downstream.

The backbone accepts only a plain torch.Tensor from a mixer, so this is invalid with that reason.
"""
import torch
from torch import nn


class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func is torch.Tensor.eq or func is torch.Tensor.__eq__:
            return torch.ones_like(out, dtype=torch.bool)
        return out


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[None, :, None]
        return self.proj(torch.cumsum(x, dim=1) / counts).as_subclass(Agreeable)
