"""Enters a TorchFunctionMode in forward and never leaves it (the screen refuses torch.overrides; tests bypass it).

Left active, the mode would see, and could rewrite, every torch call of the harness after the forward:
the loss, argmax, the comparisons of the metrics. The worker refuses the run.
"""
import torch
from torch import nn
from torch.overrides import TorchFunctionMode


class Forger(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(torch.cumsum(x, dim=1) / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None])
        Forger().__enter__()
        return y
