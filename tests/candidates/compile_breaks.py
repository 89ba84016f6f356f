"""Valid in eager, not compilable as one graph: Python control flow on a tensor's value (`.item()`)."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.value = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        running = torch.cumsum(self.value(x), dim=1)
        if running.abs().max().item() > 1e6:  # a data-dependent branch: a graph break
            running = running / 2
        counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)
        return running / counts[:, None]
