"""Valid and unusual: a gated running maximum over time (each channel keeps its largest value so far)."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.value = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        running_max = torch.cummax(self.value(x), dim=1).values
        return self.out(torch.sigmoid(self.gate(x)) * running_max)
