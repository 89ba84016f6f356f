"""Softmax attention's rotary table: computed once when the mixer is built (compiled, computing it in every
forward cost a third of a bytelm `gpu` step: docs/gpu.md), the same rotation as computing it per forward, and an
input longer than the table computes its own."""
from __future__ import annotations

import torch

from evaluator.candidate_loader import load_mixer_class
from evaluator.references import get_reference


def test_the_table_rotates_as_computing_the_angles_per_forward_does():
    mixer_class = load_mixer_class(get_reference("softmax_attention").path)
    torch.manual_seed(0)
    mixer = mixer_class(32, 2).eval()
    x = torch.randn(2, 40, 32)
    with torch.no_grad():
        from_table = mixer(x)
        mixer.rotary = mixer.rotary[:, :16]  # shorter than the input: the forward computes its own angles
        computed = mixer(x)
    torch.testing.assert_close(from_table, computed, rtol=0, atol=1e-6)
    assert not torch.equal(from_table[:, :1], from_table[:, 1:2])  # positions differ: the rotation is applied
    assert "rotary" not in mixer.state_dict() and sum(p.numel() for p in mixer.parameters()) == 4 * 32 * 32
