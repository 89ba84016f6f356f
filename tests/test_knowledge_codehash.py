"""Duplicate detection by normalised code hashes: what must match and what must not."""
from __future__ import annotations

from knowledge.archive import Archive
from knowledge.novelty import code_hash, find_duplicates, source_hashes, structure_hash
from knowledge.records import Experiment

ORIGINAL = '''"""Delta-rule mixer."""
import math
import torch
import torch.nn.functional as F
from torch import nn


class Mixer(nn.Module):
    """Overwrites its state instead of accumulating."""

    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)  # fused
        self.beta = nn.Linear(d_model, n_heads)
        self.out = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out.weight, std=0.02 / math.sqrt(2))

    def _scan(self, q, k, v, beta):
        b, h, t, d = q.shape
        state = q.new_zeros(b, h, d, d)
        outs = []
        for i in range(t):
            pred = torch.einsum("bhd,bhde->bhe", k[:, :, i], state)
            state = state + torch.einsum("bhd,bhe->bhde", k[:, :, i], beta[:, :, i, None] * (v[:, :, i] - pred))
            outs.append(torch.einsum("bhd,bhde->bhe", q[:, :, i], state))
        return torch.stack(outs, dim=2)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (z.view(b, t, self.n_heads, -1).transpose(1, 2) for z in self.qkv(x).chunk(3, dim=-1))
        beta = torch.sigmoid(self.beta(x)).transpose(1, 2)
        y = self._scan(q, F.normalize(k, dim=-1), v, beta=beta)
        return self.out(y.transpose(1, 2).reshape(b, t, -1))
'''

REFORMATTED = '''import math
import torch
import torch.nn.functional as F
from torch import nn
class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, **kwargs):
        super().__init__()
        # a comment that was not there
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3*d_model, bias = False)
        self.beta = nn.Linear(d_model, n_heads)
        self.out = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.out.weight, std=(0.02 / math.sqrt(2)))
    def _scan(self, q, k, v, beta):
        """Now with a docstring."""
        b, h, t, d = q.shape
        state = q.new_zeros(b, h, d, d)
        outs = []
        for i in range(t):
            pred = torch.einsum('bhd,bhde->bhe', k[:, :, i], state)
            state = state + torch.einsum(
                'bhd,bhe->bhde', k[:, :, i], beta[:, :, i, None] * (v[:, :, i] - pred)
            )
            outs.append(torch.einsum('bhd,bhde->bhe', q[:, :, i], state))
        return torch.stack(outs, dim=2)
    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (z.view(b, t, self.n_heads, -1).transpose(1, 2) for z in self.qkv(x).chunk(3, dim=-1))
        beta = torch.sigmoid(self.beta(x)).transpose(1, 2)
        y = self._scan(q, F.normalize(k, dim=-1), v, beta=beta)
        return self.out(y.transpose(1, 2).reshape(b, t, -1))
'''

RENAMED = '''import math
import torch
from torch.nn import functional as fn
from torch import nn


class Mixer(nn.Module):
    def __init__(self, dim: int, heads: int, **extra):
        super().__init__()
        self.h = heads
        self.proj_in = nn.Linear(dim, 3 * dim, bias=False)
        self.gate = nn.Linear(dim, heads)
        self.proj_out = nn.Linear(dim, dim, bias=False)
        nn.init.normal_(self.proj_out.weight, std=0.02 / math.sqrt(2))

    def _recurrence(self, queries, keys, values, rate):
        B, H, T, D = queries.shape
        memory = queries.new_zeros(B, H, D, D)
        ys = []
        for step in range(T):
            guess = torch.einsum("bhd,bhde->bhe", keys[:, :, step], memory)
            memory = memory + torch.einsum("bhd,bhe->bhde", keys[:, :, step], rate[:, :, step, None] * (values[:, :, step] - guess))
            ys.append(torch.einsum("bhd,bhde->bhe", queries[:, :, step], memory))
        return torch.stack(ys, dim=2)

    def forward(self, inp):
        B, T, _ = inp.shape
        q, k, v = (w.view(B, T, self.h, -1).transpose(1, 2) for w in self.proj_in(inp).chunk(3, dim=-1))
        g = torch.sigmoid(self.gate(inp)).transpose(1, 2)
        out = self._recurrence(q, fn.normalize(k, dim=-1), v, rate=g)
        return self.proj_out(out.transpose(1, 2).reshape(B, T, -1))
'''


def test_code_hash_ignores_formatting_comments_and_docstrings():
    assert code_hash(REFORMATTED) == code_hash(ORIGINAL)
    assert structure_hash(REFORMATTED) == structure_hash(ORIGINAL)


def test_structure_hash_ignores_chosen_names_but_code_hash_does_not():
    assert structure_hash(RENAMED) == structure_hash(ORIGINAL)
    assert code_hash(RENAMED) != code_hash(ORIGINAL)


def test_algorithm_changes_change_both_hashes():
    changes = [
        ("torch.sigmoid(self.beta(x))", "torch.tanh(self.beta(x))"),         # another function
        ("(v[:, :, i] - pred)", "(v[:, :, i] + pred)"),                       # another operator
        ("std=0.02 /", "std=0.2 /"),                                          # a constant is a real change
        ('"bhd,bhe->bhde"', '"bhe,bhd->bhde"'),                                # an einsum equation
        ("F.normalize(k, dim=-1), v", "k, v"),                                # a step removed
        ("q, F.normalize(k, dim=-1), v", "F.normalize(k, dim=-1), q, v"),     # arguments swapped
    ]
    for old, new in changes:
        assert old in ORIGINAL, old
        changed = ORIGINAL.replace(old, new)
        assert code_hash(changed) != code_hash(ORIGINAL), new
        assert structure_hash(changed) != structure_hash(ORIGINAL), new


def test_swapping_two_attributes_roles_is_a_change():
    swapped = ORIGINAL.replace("self.out(y", "self.TMP(y").replace("self.qkv(x)", "self.out(x)") \
        .replace("self.TMP(y", "self.qkv(y")
    assert structure_hash(swapped) != structure_hash(ORIGINAL)


def test_local_names_shadowing_imports_are_not_confused_with_them():
    uses_module = "import math\ndef f(x):\n    return math.exp(x)\n"
    shadows = "import math\ndef f(x, math):\n    return math.exp(x)\n"
    assert structure_hash(uses_module) != structure_hash(shadows)


EXOTIC = """
import functools
SCALE = 2.0
counter = 0

def bump(step=1, *rest, key=None, **extra):
    global counter
    counter += step
    return counter

class Block:
    width = 4
    def run(self, xs):
        total = 0
        def inner(y):
            nonlocal total
            total += y
            return total
        try:
            ys = [functools.reduce(lambda acc, v: acc + v * SCALE, x, 0) for x in xs]
        except ValueError as error:
            raise RuntimeError(str(error)) from error
        return [inner(y) for y in ys], bump(step=self.width, key="k")
"""


EXOTIC_RENAMED = """
import functools
FACTOR = 2.0
n_calls = 0

def advance(by=1, *more, key=None, **options):
    global n_calls
    n_calls += by
    return n_calls

class Unit:
    size = 4
    def apply(self, items):
        running = 0
        def add(y):
            nonlocal running
            running += y
            return running
        try:
            values = [functools.reduce(lambda a, w: a + w * FACTOR, x, 0) for x in items]
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc
        return [add(y) for y in values], advance(by=self.size, key="k")
"""


def test_scopes_closures_lambdas_and_handlers_rename_consistently():
    assert code_hash(EXOTIC_RENAMED) != code_hash(EXOTIC)
    assert structure_hash(EXOTIC_RENAMED) == structure_hash(EXOTIC)
    assert structure_hash(EXOTIC.replace("v * SCALE", "acc * SCALE")) != structure_hash(EXOTIC)
    assert structure_hash(EXOTIC.replace('key="k"', 'key="q"')) != structure_hash(EXOTIC)
    assert structure_hash(EXOTIC.replace("global counter", "")) != structure_hash(EXOTIC)


def test_unparsable_source_falls_back_to_tokens():
    broken = "def f(x:\n    return x  # oops\n"
    assert code_hash(broken) == code_hash("def f(x:\n    return x\n")
    assert code_hash(broken) != code_hash("def f(y:\n    return y\n")
    assert source_hashes(broken).structure_hash == code_hash(broken)


def test_find_duplicates_in_the_archive(tmp_path):
    hashes = source_hashes(ORIGINAL)
    with Archive.open(tmp_path) as archive:
        archive.add_experiment(Experiment(id="e0001", run="r", code=ORIGINAL, code_hash=hashes.code_hash,
                                          structure_hash=hashes.structure_hash))
        exact = find_duplicates(archive, REFORMATTED)
        assert exact.same_code == ["e0001"] and exact.duplicate
        renamed = find_duplicates(archive, RENAMED)
        assert renamed.same_code == [] and renamed.same_structure == ["e0001"]
        assert not find_duplicates(archive, ORIGINAL, exclude=["e0001"]).duplicate
        assert not find_duplicates(archive, ORIGINAL.replace("torch.sigmoid", "torch.tanh")).duplicate
