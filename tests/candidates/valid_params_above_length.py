"""Valid and unusual: a long-range branch whose parameters are used only at positions past 40.

Shorter inputs skip the branch, so a gradient check at a short length alone would call its
parameters unused; at the training lengths they are used and trained. The first 40 positions
never use it, whatever the length, so the outputs on a prefix do not depend on what follows.
"""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.local = nn.Linear(d_model, d_model)
        self.long_range = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[None, :, None]
        out = self.local(x)
        if x.shape[1] > 40:
            long_range = self.long_range(torch.cumsum(x, dim=1) / counts)
            out = torch.cat([out[:, :40], out[:, 40:] + long_range[:, 40:]], dim=1)
        return out
