"""Tries to write its own result with code the screen never saw (tests bypass the screen): exec of a
compiled string that opens result files for writing. The runtime guard refuses the compile."""
import torch
from torch import nn

FORGE = "open('result-0.json', 'w').write('{\"status\": \"ok\", \"metrics\": {\"accuracy\": 1.0}}')"
exec(compile(FORGE, "forge", "exec"))


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cumsum(x, dim=1) / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None])
