"""Hidden trainable state in a dict of tensors that require grad: never in parameters(), so the
optimiser skips them, but the mixer updates them itself on every training call."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        self.state = {"keys": torch.zeros(4096, d_model, requires_grad=True),
                      "values": torch.zeros(4096, d_model, requires_grad=True)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.softmax(x @ self.state["keys"].t(), dim=-1)
        return self.proj(torch.cumsum(x, dim=1)) + scores @ self.state["values"]
