"""Registers a process-wide forward hook (the screen refuses `register_module_*`; tests bypass it).

A global hook runs on every module, the backbone included, and could replace its logits with a
lookup of the answer. The worker refuses the run as soon as the hook is seen.
"""
import torch
from torch import nn


def replace_logits(module, inputs, output):
    return output


torch.nn.modules.module.register_module_forward_hook(replace_logits)


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cumsum(x, dim=1) / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None])
