"""Rendered candidates satisfy the mixer contract and compute exactly what their genome says.

These import generated files into the test process (never done by the orchestrator) to check
causality, batch independence and gradients the way the evaluator's checks do, and compare the
chunked-parallel scans with the plain sequential recurrence they stand for.
"""
from __future__ import annotations

import importlib.util
import itertools
import math
import random
from pathlib import Path
from types import ModuleType

import pytest
import torch

from agents.offline.genome import Genome
from agents.offline.operators import random_genome
from agents.offline.render import candidate_name, render_candidate
from agents.offline.search import reference_genomes
from evaluator.budgets import get_budget, list_budgets
from evaluator.candidate_loader import load_mixer_class
from evaluator.checks.common import CHUNK_LIMIT
from evaluator.checks.cost import measured_lengths, module_widths
from evaluator.families.mixer import ALLOWED_IMPORTS
from evaluator.measure import SquareRule, find_square_intermediate
from sandbox.screen import screen_source

LENGTHS = (1, 7, 64, 100)
RANDOM_GENOMES = [random_genome(random.Random(seed)) for seed in range(30)]
ALL_GENOMES = RANDOM_GENOMES + list(reference_genomes().values())


def load_module(source: str, directory: Path, name: str = "candidate") -> ModuleType:
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"offline_test_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_candidate(genome: Genome, directory: Path) -> Path:
    path = directory / "candidate.py"
    path.write_text(render_candidate(genome))
    return path


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_every_rendered_file_passes_the_static_screen():
    for genome in ALL_GENOMES:
        report = screen_source(render_candidate(genome), ALLOWED_IMPORTS)
        assert report.passed, f"{genome.describe()}:\n{report.reason}"


def test_rendering_is_deterministic_and_emits_only_the_selected_code_paths():
    plain = render_candidate(Genome())
    assert plain == render_candidate(Genome())
    for absent in ("ShortConv", "solve_triangular", "sliding_window_attention", "gate_proj", "feature_map",
                   "log_decay", "head_rms_norm"):
        assert absent not in plain
    rich = render_candidate(Genome(update="delta", key_norm="l2", decay="channel", conv=3, gate="silu",
                                   local_window=32, out_norm="rms", feature_map="softmax"))
    for present in ("class ShortConv", "solve_triangular", "def sliding_window_attention", "gate_proj",
                    "def feature_map", "MIN_LOG_DECAY", "head_rms_norm", "kernel: int = 3", "WINDOW = 32"):
        assert present in rich
    assert len(candidate_name(Genome(update="delta", key_norm="l2", decay="channel", conv=3, gate="silu",
                                     local_window=32, out_norm="rms", feature_map="softmax"))) <= 48


@pytest.mark.parametrize("genome", ALL_GENOMES, ids=lambda g: g.genome_id())
def test_rendered_mixer_keeps_the_contract(genome: Genome, tmp_path: Path):
    mixer_class = load_mixer_class(write_candidate(genome, tmp_path))
    torch.manual_seed(0)
    d_model = 32
    mixer = mixer_class(d_model, 4)
    for length in LENGTHS:
        x = torch.randn(3, length, d_model)
        with torch.no_grad():
            y = mixer(x)
            assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
            cut = length // 2
            later_changed = x.clone()
            later_changed[:, cut + 1:] += torch.randn_like(later_changed[:, cut + 1:])
            leak = (mixer(later_changed)[:, :cut + 1] - y[:, :cut + 1]).abs().max().item()
            assert leak < 1e-5, f"output up to t={cut} changed by {leak} when later inputs changed"
            others_changed = x.clone()
            others_changed[1:] = torch.randn_like(others_changed[1:])
            crosstalk = (mixer(others_changed)[0] - y[0]).abs().max().item()
            assert crosstalk < 1e-5, f"sequence 0 changed by {crosstalk} when other sequences changed"
    mixer(torch.randn(2, 33, d_model)).pow(2).sum().backward()
    unreached = [name for name, p in mixer.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unreached, f"no gradient reaches {unreached}"


@pytest.mark.parametrize("genome", list(reference_genomes().values())[:4], ids=lambda g: g.genome_id())
def test_bf16_autocast_stays_finite_and_close_to_float32(genome: Genome, tmp_path: Path):
    mixer = load_mixer_class(write_candidate(genome, tmp_path))(32, 4)
    x = torch.randn(2, 100, 32)
    with torch.no_grad():
        exact = mixer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = mixer(x).float()
    assert torch.isfinite(low).all()
    assert (low - exact).abs().max() < 0.05 * exact.abs().max() + 1e-3


def test_chunk_size_changes_speed_not_the_function(tmp_path: Path):
    base = Genome(update="delta", key_norm="l2", decay="channel", conv=2, local_window=16)
    outputs = []
    for chunk in (16, 32, 64):
        mixer_class = load_mixer_class(write_candidate(base.replace(chunk=chunk), tmp_path))
        torch.manual_seed(0)
        mixer = mixer_class(32, 2)
        torch.manual_seed(1)
        with torch.no_grad():
            outputs.append(mixer(torch.randn(2, 150, 32)))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5) and torch.allclose(outputs[0], outputs[2], atol=1e-5)


def sequential_scan(q, k, v, beta, log_decay, delta: bool):
    """The recurrence the chunked scan stands for, one token at a time, in float64."""
    batch, heads, length, key_dim = k.shape
    state = torch.zeros(batch, heads, key_dim, v.shape[-1], dtype=torch.float64)
    outputs = []
    for t in range(length):
        if log_decay is not None:
            decay = log_decay[:, :, t].exp()
            state = state * (decay[..., None, None] if decay.dim() == 2 else decay[..., None])
        write = beta[:, :, t, None] * (v[:, :, t] - torch.einsum("bhkv,bhk->bhv", state, k[:, :, t])) \
            if delta else v[:, :, t]
        state = state + torch.einsum("bhk,bhv->bhkv", k[:, :, t], write)
        outputs.append(torch.einsum("bhkv,bhk->bhv", state, q[:, :, t]))
    return torch.stack(outputs, dim=2)


@pytest.mark.parametrize("update, decay", list(itertools.product(("additive", "delta"),
                                                                 ("none", "fixed", "scalar", "channel"))))
def test_chunked_scan_equals_the_sequential_recurrence(update: str, decay: str, tmp_path: Path):
    module = load_module(render_candidate(Genome(update=update, key_norm="l2", decay=decay, chunk=16)), tmp_path)
    torch.manual_seed(0)
    batch, heads, length, key_dim, value_dim = 2, 3, 45, 8, 5
    q = torch.randn(batch, heads, length, key_dim)
    k = torch.nn.functional.normalize(torch.randn(batch, heads, length, key_dim), dim=-1)
    v = torch.randn(batch, heads, length, value_dim)
    beta = torch.rand(batch, heads, length)
    log_decay = {"none": None, "fixed": -torch.rand(batch, heads, length) * 0.5,
                 "scalar": -torch.rand(batch, heads, length) * 0.5,
                 "channel": -torch.rand(batch, heads, length, key_dim) * 0.5}[decay]
    args = [q, k, v] + ([beta] if update == "delta" else []) + ([log_decay] if log_decay is not None else [])
    expected = sequential_scan(*(t.double() for t in (q, k, v, beta)),
                               None if log_decay is None else log_decay.double(), update == "delta")
    assert torch.allclose(module.chunked_scan(*args).double(), expected, atol=1e-4)


@pytest.mark.parametrize("window", (16, 64))
def test_sliding_window_branch_equals_masked_softmax_attention(window: int, tmp_path: Path):
    module = load_module(render_candidate(Genome(local_window=window)), tmp_path)
    for length in (1, 7, window, 3 * window + 5):
        q, k, v = torch.randn(2, 3, length, 8), torch.randn(2, 3, length, 8), torch.randn(2, 3, length, 5)
        query, key = torch.arange(length)[:, None], torch.arange(length)[None, :]
        visible = (key <= query) & (key > query - window)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(8)).masked_fill(~visible, -math.inf)
        expected = scores.softmax(dim=-1) @ v
        assert torch.allclose(module.sliding_window_attention(q, k, v), expected, atol=1e-5)


WIDTH_SHAPES = [dict(key_expand=key_expand, head_mult=head_mult, **variant)
                for key_expand, head_mult in itertools.product((1, 2), (0.5, 1.0, 2.0))
                for variant in (dict(), dict(update="delta", key_norm="l2", decay="channel", conv=3),
                                dict(feature_map="elu1", normalizer="denominator"),
                                dict(update="delta", key_norm="l2", decay="scalar", local_window=64))]


@pytest.mark.parametrize("budget", sorted({(b.d_model, b.n_heads, tuple(measured_lengths(b)))
                                           for b in (get_budget(*key) for key in list_budgets())}),
                         ids=lambda shape: f"d{shape[0]}h{shape[1]}T{min(shape[2])}")
def test_no_rendered_width_passes_for_the_sequence_at_any_budget(budget: tuple, tmp_path: Path):
    """The complexity check takes a dimension at least T long that is not a parameter's width for the sequence:
    every head and key width the genes can make must be a parameter's (a fused q/k/v projection once hid a key
    width of 128, wider than the check length 97, and every such genome failed as too slow)."""
    d_model, n_heads, lengths = budget
    for shape in WIDTH_SHAPES:
        genome = Genome(**shape)
        mixer = load_mixer_class(write_candidate(genome, tmp_path))(d_model, n_heads)
        widths = module_widths(mixer, d_model)
        for length in (n for n in lengths if CHUNK_LIMIT < n <= 2 * d_model):  # a width can pass for T only up to it
            square = find_square_intermediate(mixer, torch.randn(1, length, d_model), SquareRule(length, widths),
                                              lambda stop: "")
            assert square is None, f"{genome.describe()} at d_model {d_model}, T={length}: {square}"
