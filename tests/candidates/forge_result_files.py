"""Forges result files in its work directory (used with the screen bypassed, to test the nonce).

It looks for the spec (which holds the nonce) and writes eval.json and result files claiming a
perfect score. The orchestrator must ignore all of them.
"""
import json
import os

import torch
from torch import nn

FORGED = {"status": "ok", "reason": "", "task": "mqar", "budget": "smoke", "device": "cpu", "seed": 0,
          "candidate_hash": "forged", "metrics": {"accuracy": 1.0, "forged": True}}

names = ["eval.json", "result.json", "result-0.json"]
if os.path.exists("spec.json"):
    with open("spec.json") as handle:
        names.append("result-" + json.load(handle)["nonce"] + ".json")
for name in names:
    with open(name, "w") as handle:
        json.dump(FORGED, handle)


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cumsum(x, dim=1))
