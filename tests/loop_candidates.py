"""Candidate files the scripted LLM coder answers with in the loop tests."""

CUMULATIVE_MEAN = '''
import torch
import torch.nn.functional as F


class Mixer(torch.nn.Module):
    """Gated running mean of the values: causal, linear time."""

    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.proj_in = torch.nn.Linear(d_model, 2 * d_model)
        self.proj_out = torch.nn.Linear(d_model, d_model)

    def forward(self, x):
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=value.dtype).view(1, -1, 1)
        return self.proj_out(torch.cumsum(value, dim=1) / steps * F.silu(gate))
'''

# The same idea with a bug a coder might make: the mean over the whole sequence sees the future.
WHOLE_SEQUENCE_MEAN = CUMULATIVE_MEAN.replace(
    "torch.cumsum(value, dim=1) / steps", "value.mean(dim=1, keepdim=True).expand_as(value)")

RUNNING_MAX = '''
import torch


class Mixer(torch.nn.Module):
    """Running maximum of projected features, gated: causal, linear time."""

    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.value = torch.nn.Linear(d_model, d_model)
        self.gate = torch.nn.Linear(d_model, d_model)
        self.out = torch.nn.Linear(d_model, d_model)

    def forward(self, x):
        running = torch.cummax(self.value(x), dim=1).values
        return self.out(running * torch.sigmoid(self.gate(x)))
'''
