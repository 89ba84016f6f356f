"""Valid and unusual: a chunked decayed sum whose 64 x 64 decay kernel is built lazily on the first
call and cached on the module (a cache that settles, not state), used whole at T = 64."""
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, chunk: int = 64, **kwargs):
        super().__init__()
        self.chunk = chunk
        self.inp = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.kernels = {}

    def kernel(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self.kernels:
            steps = torch.arange(self.chunk, device=device, dtype=torch.float32)
            lags = steps[:, None] - steps[None, :]
            self.kernels[key] = torch.where(lags >= 0, 0.9 ** lags.clamp(min=0), torch.zeros_like(lags))
        return self.kernels[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.inp(x)
        kernel = self.kernel(x.device).to(u.dtype)
        carry = torch.zeros_like(u[:, :1])
        pieces = []
        for start in range(0, x.shape[1], self.chunk):
            piece = u[:, start:start + self.chunk]
            size = piece.shape[1]
            mixed = kernel[:size, :size] @ piece + (0.9 ** (torch.arange(size, device=x.device) + 1.0))[
                None, :, None].to(u.dtype) * carry
            pieces.append(mixed)
            carry = mixed[:, -1:]
        return self.out(torch.cat(pieces, dim=1))
