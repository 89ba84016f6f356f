"""Valid and unusual: a custom autograd Function for a gated cumulative sum, plus helper idioms.

Uses `torch.autograd.Function` with `once_differentiable`, a module-level alias of a library
function (`cumsum = torch.cumsum`), `functools.partial`, `torch.special`, a walrus inside a
comprehension and private attributes on `self`; all of which the allowlist screen must keep allowing.
"""
import functools

import torch
from torch import nn
from torch.autograd.function import once_differentiable

cumsum = torch.cumsum
gelu_tanh = functools.partial(nn.functional.gelu, approximate="tanh")


class GatedCumsum(torch.autograd.Function):
    """y = cumsum(x * g) over time; the backward is the reversed cumulative sum of the upstream grad."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, gate)
        return cumsum(x * gate, dim=1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, gate = ctx.saved_tensors
        upstream = grad.flip(1).cumsum(dim=1).flip(1)
        return upstream * gate, upstream * x


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self._heads = n_heads
        self.value = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.special.expit(self.gate(x))
        y = GatedCumsum.apply(self.value(x), gate)
        counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[None, :, None]
        widths = [w for h in range(self._heads) if (w := x.shape[-1] // self._heads) > 0 and h >= 0]
        return self.out(gelu_tanh(y / counts)) * (len(widths) / self._heads)
