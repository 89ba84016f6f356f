"""Writes a forged result into every descriptor the worker may hold open, then ends the worker at once
(tests bypass the screen). `import os` raises no audit event (os is loaded) and os.write has none:
what stops the forgery is the seal the orchestrator checks on the result file.
"""
import json
import os

import torch
from torch import nn

FORGED = json.dumps({"status": "ok", "reason": "", "task": "mqar", "budget": "smoke", "device": "cpu", "seed": 0,
                     "candidate_hash": "forged", "metrics": {"accuracy": 1.0, "forged": True}}).encode()


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fd in range(3, 64):
            try:
                os.pwrite(fd, FORGED, 0)
            except OSError:
                pass
        os._exit(0)
