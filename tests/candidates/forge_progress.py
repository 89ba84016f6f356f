"""A valid mixer that tries to forge progress on every forward (tests bypass the screen): fake progress
lines on stdout, and into every descriptor the worker may hold open fake events (unsealed, with a made-up
seal, overlong, junk). `os.write` raises no audit event. The result must not change, and no forged event
may reach the orchestrator's `on_progress`.
"""
import json
import os

import torch
from torch import nn

FAKE = {"kind": "step", "name": "forged", "passed": True, "index": 999, "total": 999, "loss": 0.0,
        "tokens_per_second": 1e12, "elapsed_s": 0.0}
LINES = [json.dumps({"event": json.dumps(FAKE), "mac": "0" * 64}).encode() + b"\n",   # a made-up seal
         json.dumps(FAKE).encode() + b"\n",                                           # no seal at all
         b"x" * 10_000 + b"\n",                                                       # overlong
         b"\xff\xfe not json {\n"]


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("[   1.0s] step 999/999  loss 0.0000  accuracy 1.0", flush=True)
        for fd in range(3, 64):
            for line in LINES:
                try:
                    os.write(fd, line)
                except OSError:
                    pass
        return self.proj(torch.cumsum(x, dim=1)) / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None]
