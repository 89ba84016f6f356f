"""Hidden trainable state: a list of large tensors outside parameters() (about 40x the smoke budget),
which the mixer trains itself on every training call. parameters() sees only the small projection."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, slots: int = 4, rows: int = 30000, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        self.memory = [torch.zeros(rows, d_model) for _ in range(slots)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        recalled = self.memory[0][:length].clone()
        if self.training:
            with torch.no_grad():
                for table in self.memory:
                    table[:length] += 0.01 * x.detach().mean(dim=0).to(table.dtype)
        return self.proj(torch.cumsum(x, dim=1)) + recalled.to(x.dtype)
