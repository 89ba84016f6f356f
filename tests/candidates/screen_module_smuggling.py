"""Smuggles module objects where a per-name screen cannot follow them, then reaches `os` and `eval`.

Each route is refused on its own line: a module in a default argument, a module stored as a class
attribute, a module in tuple unpacking, a builtin reached as an attribute of an allowed module, and
a builtin handed to `functools.partial`.
"""
import dataclasses
import functools

import torch
from torch import nn


class Holder:
    library = torch


def environment(module=torch):
    return module


first, second = torch, nn
evaluate = dataclasses.builtins.eval
run = functools.partial(eval, "1 + 1")


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cumsum(x, dim=1)) / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None]
