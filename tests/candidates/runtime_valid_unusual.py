"""Valid and unusual: a causal FFT long convolution configured by a @dataclass and a typing.NamedTuple,
with its decay kernel cached by functools.lru_cache. Everything here must pass the runtime guard."""
from __future__ import annotations

import functools
import math
import typing
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Config:
    decay_min: float = 0.5
    decay_max: float = 0.99
    tags: tuple = field(default_factory=tuple)


class Shape(typing.NamedTuple):
    batch: int
    length: int
    width: int


@functools.lru_cache(maxsize=8)
def positions(length: int) -> torch.Tensor:
    return torch.arange(length, dtype=torch.float32)


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        config = Config()
        decays = torch.linspace(config.decay_min, config.decay_max, d_model)
        self.log_decay = nn.Parameter(torch.log(decays))
        self.inp = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.scale = 1.0 / math.sqrt(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = Shape(*x.shape)
        n = 2 * shape.length
        kernel = torch.exp(positions(shape.length).to(x.device)[:, None] * self.log_decay[None, :])  # [T, D]
        u = self.inp(x)
        # float64: the round-off of a float32 FFT reaches past positions at the causality check's tolerance
        spectrum = torch.fft.rfft(u.double(), n=n, dim=1) * torch.fft.rfft(kernel.double(), n=n, dim=0)[None]
        y = torch.fft.irfft(spectrum, n=n, dim=1)[:, : shape.length].to(x.dtype)
        return self.out(y * self.scale + u)
