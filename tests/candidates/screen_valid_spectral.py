"""Valid and unusual: a spectral channel filter per token, then a causal running mean over time.

Uses what the allowlist screen must keep allowing: `@dataclass` on the file's own class,
`typing.NamedTuple`, `functools.lru_cache`, `torch.fft`, a feature test `hasattr(F, ...)`, a
`type(a) is type(b)` comparison, a plain `"{}".format`, comprehensions and a local named like a
refused builtin (`input`), which is a local, not the builtin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


@dataclass(frozen=True)
class FilterConfig:
    decay_min: float = 0.5
    decay_max: float = 0.99
    tags: tuple = field(default_factory=tuple)


class Shapes(NamedTuple):
    batch: int
    length: int
    width: int


@lru_cache(maxsize=16)
def fft_size(width: int) -> int:
    return 1 << math.ceil(math.log2(width))


def channel_filter(u: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """Filter each token's channels in the frequency domain: it mixes channels, never positions."""
    width = u.shape[-1]
    n = fft_size(width)
    spectrum = torch.fft.rfft(u.float(), n=n, dim=-1) * response[: n // 2 + 1]
    return torch.fft.irfft(spectrum, n=n, dim=-1)[..., :width].to(u.dtype)


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, config: Optional[FilterConfig] = None, **kwargs):
        super().__init__()
        self.config = config or FilterConfig()
        low, high = self.config.decay_min, self.config.decay_max
        self.response = nn.Parameter(torch.linspace(high, low, fft_size(d_model) // 2 + 1))
        self.inp = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.label = "spectral({}, sdpa={})".format(d_model, HAS_SDPA)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        shapes = Shapes(*input.shape)
        counts = torch.arange(1, shapes.length + 1, device=input.device, dtype=input.dtype)[None, :, None]
        y = channel_filter(self.inp(input), self.response).cumsum(dim=1) / counts
        scales = [1.0 / math.sqrt(1 + i) for i in range(2)]
        assert type(y) is type(input)
        return self.out(y * scales[0])
