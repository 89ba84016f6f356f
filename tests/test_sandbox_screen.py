"""The static screen: every refused construct names its line and says why; valid mixers pass."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evaluator.evaluate import evaluate
from evaluator.families.mixer import ALLOWED_IMPORTS
from evaluator.records import Status
from sandbox.screen import screen_source
from sandbox.screen_rules import FORBIDDEN_TORCH_PATHS

REFERENCES = sorted(p for p in (Path(__file__).resolve().parents[1] / "evaluator" / "references").glob("*/*.py")
                    if not p.name.startswith("_"))
CANDIDATES = Path(__file__).with_name("candidates")
VALID_CANDIDATES = ["screen_valid_spectral.py", "screen_valid_custom_gradient.py"]
HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
BAD_LINE = 4  # the first line after HEADER

# (construct on line 4, a phrase the reason must contain)
REFUSED = {
    "import outside the allowlist": ("import os", "import of `os` is not allowed"),
    "from-import outside the allowlist": ("from subprocess import run", "import of `subprocess`"),
    "relative import": ("from . import helpers", "relative imports"),
    "star import": ("from math import *", "import *"),
    "private module": ("import torch._dynamo", "private module"),
    "private name import": ("from torch import _C", "private name `_C`"),
    "torch.save": ("torch.save({}, 'x.pt')", "`torch.save`"),
    "torch.load via from-import": ("from torch import load", "`torch.load`"),
    "torch.hub": ("model = torch.hub.load('a', 'b')", "`torch.hub.load`"),
    "torch.utils import": ("import torch.utils.cpp_extension", "`torch.utils.cpp_extension`"),
    "torch.ops": ("y = torch.ops.aten.relu(x)", "`torch.ops.aten.relu`"),
    "torch.library": ("lib = torch.library.Library('x', 'DEF')", "`torch.library.Library`"),
    "torch.jit": ("f = torch.jit.script(g)", "`torch.jit.script`"),
    "torch.compile": ("f = torch.compile(g)", "`torch.compile`"),
    "torch.backends": ("torch.backends.cudnn.benchmark = True", "`torch.backends"),
    "torch.cuda": ("ok = torch.cuda.is_available()", "`torch.cuda.is_available`"),
    "torch.multiprocessing": ("import torch.multiprocessing as mp", "`torch.multiprocessing`"),
    "torch.distributed": ("torch.distributed.init_process_group('gloo')", "`torch.distributed"),
    "torch.set_default_dtype": ("torch.set_default_dtype(torch.float64)", "`torch.set_default_dtype`"),
    "torch.set_num_threads": ("torch.set_num_threads(1)", "`torch.set_num_threads`"),
    "torch.manual_seed": ("torch.manual_seed(0)", "seeds and random state belong to the harness"),
    "torch.from_file": ("t = torch.from_file('/etc/passwd')", "`torch.from_file`"),
    "storage class": ("s = torch.UntypedStorage(4)", "storages"),
    "tofile on any object": ("x.tofile('out.bin')", "`.tofile`"),
    "numpy escape": ("a = x.numpy()", "`.numpy`"),
    "torch.fx": ("g = torch.fx.symbolic_trace(m)", "`torch.fx.symbolic_trace`"),
    "torch.autograd.graph hooks": ("torch.autograd.graph.register_multi_grad_hook((x,), f)", "`torch.autograd.graph"),
    "global module hooks": ("nn.modules.module.register_module_forward_hook(f)", "`torch.nn.modules.module"),
    "torch.overrides": ("m = torch.overrides.TorchFunctionMode()", "`torch.overrides"),
    "alias of torch": ("t = torch; t.save(x, 'p')", "`torch.save`"),
    "private torch attribute": ("c = torch._C", "private attribute `_C`"),
    "private attribute on another object": ("v = x._version", "private attribute `_version`"),
    "dunder attribute": ("k = x.__class__", "dunder attribute `__class__`"),
    "dunder call on a class": ("nn.Module.__init__(m)", "dunder attribute `__init__`"),
    "dunder name": ("b = __builtins__", "`__builtins__`"),
    "__import__": ("os = __import__('os')", "`__import__`"),
    "open": ("f = open('/etc/passwd')", "`open` is not allowed"),
    "eval": ("eval('1 + 1')", "`eval` is not allowed"),
    "exec": ("exec('x = 1')", "`exec` is not allowed"),
    "compile": ("code = compile('1', 'f', 'eval')", "`compile` is not allowed"),
    "getattr": ("f = getattr(torch, 'save')", "`getattr` is not allowed"),
    "setattr": ("setattr(F, 'relu', g)", "`setattr` is not allowed"),
    "delattr": ("delattr(F, 'relu')", "`delattr` is not allowed"),
    "globals": ("g = globals()", "`globals` is not allowed"),
    "vars": ("v = vars(torch)", "`vars` is not allowed"),
    "dir": ("names = dir(torch)", "`dir` is not allowed"),
    "breakpoint": ("breakpoint()", "`breakpoint` is not allowed"),
    "input": ("answer = input()", "`input` is not allowed"),
    "memoryview": ("m = memoryview(b'x')", "`memoryview` is not allowed"),
    "builtin passed as a default": ("def f(x, e=eval): return e(x)", "`eval` is not allowed"),
    "three-argument type": ("C = type('C', (nn.Module,), {})", "type(name, bases, namespace)"),
    "typing.get_type_hints": ("import typing; h = typing.get_type_hints(f)", "`.get_type_hints`"),
    "frame objects": ("fr = (i for i in ()).gi_frame", "`.gi_frame`"),
    "patching a torch function": ("F.relu = lambda x: x", "assigning to `torch.nn.functional.relu`"),
    "patching a module constant": ("import math; math.pi = 3", "assigning to `math.pi`"),
    "patching through an alias": ("L = nn.Linear; L.forward = None", "assigning to `torch.nn.Linear.forward`"),
    "augmented patch": ("torch.x += 1", "assigning to `torch.x`"),
    "deleting a module attribute": ("del torch.nn.functional.gelu", "deleting `torch.nn.functional.gelu`"),
    "global rebinding of an import": ("def f():\n    global torch", "`global torch`"),
    "builtin in an annotation": ("def f(x: open('/etc/passwd')): pass", "`open` is not allowed"),
    "comprehension variable does not shadow": ("names = [0 for open in ()]; open('x')", "`open` is not allowed"),
    "bare global does not shadow": ("def f():\n    global open\nf(); open('x')", "`open` is not allowed"),
}


# Class 1, arbitrary code through allowed modules: re-exports, smuggled modules, reflection, hooks.
# (construct from line 4 on, a phrase the reason must contain)
THROUGH_ALLOWED_MODULES = {
    "re-exported torch.save": ("F.torch.save(1, 'p')",
                               "`torch.nn.functional.torch.save` (that is `torch.save`) is not allowed"),
    "re-exported setting": ("F.torch.set_num_threads(1)", "(that is `torch.set_num_threads`) is not allowed"),
    "builtins re-exported by dataclasses": ("import dataclasses\ne = dataclasses.builtins.eval", "`.builtins`"),
    "numpy re-exported by F": ("a = F.np", "`.np` is not allowed"),
    "function defined in a refused module": ("h = F.handle_torch_function", "defined in `torch.overrides`"),
    "TorchScript file reader": ("r = torch.PyTorchFileReader('x')", "TorchScript/runtime binding"),
    "TorchScript IR import": ("m = torch.import_ir_module", "TorchScript/runtime binding"),
    "global generator": ("torch.default_generator.manual_seed(0)", "`torch.default_generator.manual_seed`"),
    "device module": ("m = torch.get_device_module('cpu')", "`torch.get_device_module` is not allowed"),
    "module outside the allowlist by from-import": ("from torch.nn import utils",
                                                    "`torch.nn.utils` is not allowed: it is a module outside"),
    "module outside the allowlist by import": ("import torch.nn.utils as u", "import of `torch.nn.utils`"),
    "module outside the allowlist by chain": ("L = nn.modules.linear.Linear", "`torch.nn.modules` is not allowed"),
    "name that does not exist": ("v = torch.fooo", "`torch.fooo` does not exist in the installed torch"),
    "module aliased by assignment": ("t = torch", "`torch` is a module and may be used only as `torch.name`"),
    "module in tuple unpacking": ("a, b = torch, 1", "`torch` is a module"),
    "module as a class attribute": ("class A:\n    m = torch", "`torch` is a module"),
    "module as a default argument": ("def f(x, m=F):\n    return x", "`F` (that is `torch.nn.functional`) is a module"),
    "module returned by a lambda": ("g = lambda: torch", "`torch` is a module"),
    "module bound by a walrus": ("v = (w := nn)", "`nn` (that is `torch.nn`) is a module"),
    "module in a container": ("m = [torch][0]", "`torch` is a module"),
    "module passed to a function": ("n = print(F)", "`F` (that is `torch.nn.functional`) is a module"),
    "dunder reflection on a module": ("g = F.__getattribute__('torch')", "dunder attribute `__getattribute__`"),
    "super().__getattribute__": ("class A:\n    def f(self):\n        return super().__getattribute__('x')",
                                 "dunder attribute `__getattribute__`"),
    "partial of a refused builtin": ("import functools\np = functools.partial(eval, '1')", "`eval` is not allowed"),
    "type of type": ("T = type(type(1))", "`type(x)` may only be compared or printed"),
    "type as a value": ("T = type", "`type` may only be called as `type(x)`"),
    "builtin outside the allowlist": ("c = copyright", "`copyright` is not allowed: it is not among the builtins"),
    "undefined name": ("v = foo(1)", "`foo` is not allowed: it is neither defined in this file"),
    "builtin shadowed only conditionally": ("if False:\n    open = None\nf = open('x')",
                                            "binding `open` at module level"),
    "comprehension's first iterable": ("v = [0 for open in open('x')]", "`open` is not allowed"),
    "rebinding an import": ("def f(F):\n    return 1", "`F` is bound by the import on line 3"),
    "two imports under one name": ("from torch import nn as F", "`F` is already bound by the import on line 3"),
    "format fields read attributes": ("s = '{0.__globals__}'.format(F.relu)", "`.format` is not allowed here"),
    "dataclass applied to a library class": ("import dataclasses\nX = dataclasses.dataclass(nn.Linear)",
                                             "`dataclasses.dataclass` may only decorate a class"),
    "make_dataclass": ("import dataclasses\nX = dataclasses.make_dataclass('X', [])",
                       "`dataclasses.make_dataclass` is not allowed"),
    "metaclass": ("class A(metaclass=nn.Module):\n    pass", "metaclasses are not allowed"),
    "base the screen cannot name": ("def make(base):\n    class A(base):\n        pass",
                                    "class bases must be classes named directly"),
    "tensor subclass": ("class T(torch.Tensor):\n    pass", "subclassing `torch.Tensor`"),
    "parameter subclass": ("class P(nn.Parameter):\n    pass", "subclassing `torch.nn.Parameter`"),
    "__torch_function__": ("class A:\n    def __torch_function__(self, *a):\n        pass",
                           "defining `__torch_function__`"),
    "as_subclass": ("def f(x):\n    return x.as_subclass(torch.Tensor)", "`.as_subclass` is not allowed"),
    "raw storage": ("def f(x):\n    return x.untyped_storage()", "`.untyped_storage` is not allowed"),
    "data pointer": ("def f(x):\n    return x.data_ptr()", "`.data_ptr` is not allowed"),
    "autograd graph": ("def f(x):\n    return x.grad_fn.next_functions", "`.grad_fn` is not allowed"),
    "tensor hook": ("def f(x):\n    x.register_hook(lambda g: g * 0)", "`.register_hook` is not allowed"),
    "forward pre-hook": ("def f(m):\n    m.register_forward_pre_hook(None)", "`.register_forward_pre_hook`"),
    "backward hook": ("def f(m):\n    m.register_full_backward_hook(None)", "`.register_full_backward_hook`"),
    "grad accumulation hook": ("def f(p):\n    p.register_post_accumulate_grad_hook(None)",
                               "`.register_post_accumulate_grad_hook`"),
    "state-dict hook": ("def f(m):\n    m.register_load_state_dict_post_hook(None)",
                        "`.register_load_state_dict_post_hook`"),
    "patch through a local alias": ("def f():\n    L = nn.Linear\n    L.forward = None",
                                    "assigning to `torch.nn.Linear.forward`"),
    "patch through tuple unpacking": ("a, L = 1, nn.Linear\nL.forward = None", "`L` may hold `torch.nn.Linear`"),
    "patch through a class attribute": ("class A:\n    L = nn.Linear\nA.L.forward = None",
                                        "an attribute of `.L` is not allowed: it may hold `torch.nn.Linear`"),
    "patch through a computed object": ("def g():\n    return 1\ng().forward = None",
                                        "an attribute of a computed object"),
}

VALID_IDIOMS = {
    "feature test on a module": "ok = hasattr(F, 'scaled_dot_product_attention')",
    "submodule by from-import": "from torch.nn import functional\ny = functional.relu",
    "type comparison": "def same(a, b):\n    return type(a) is type(b)",
    "plain str.format": "s = '{} {:.2f} {name}'.format(1, 2.0, name='x')",
    "torch.amp.autocast": "def f(x):\n    with torch.amp.autocast(device_type='cpu', enabled=False):\n        return x",
    "once_differentiable": "from torch.autograd.function import once_differentiable",
    "alias of a library function": "cumsum = torch.cumsum\ny = cumsum(torch.ones(3), dim=0)",
    "NamedTuple and exception bases": "import typing\nclass P(typing.NamedTuple):\n    a: int\n"
                                      "class Oops(ValueError):\n    pass",
    "builtin-named local": "def f(input, dir=1):\n    compile = [i for i in range(dir)]\n    return input, compile",
    "library class stored on self": "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                    "        self.act = nn.GELU()\n        self.kind = nn.Linear",
}


@pytest.mark.parametrize("construct", THROUGH_ALLOWED_MODULES.values(), ids=THROUGH_ALLOWED_MODULES.keys())
def test_routes_through_allowed_modules_are_refused_with_why(construct):
    test_refused_construct_names_its_line_and_why(construct)


@pytest.mark.parametrize("code", VALID_IDIOMS.values(), ids=VALID_IDIOMS.keys())
def test_unusual_valid_idioms_pass(code):
    report = screen_source(HEADER + code + "\n", ALLOWED_IMPORTS)
    assert report.passed, report.reason


@pytest.mark.parametrize("path", sorted(FORBIDDEN_TORCH_PATHS), ids=str)
def test_every_refused_torch_path_is_refused_when_reached_through_a_reexport(path):
    """`F.torch.<path>` reaches the same object as `torch.<path>`: the screen judges what it reaches."""
    source = HEADER + f"v = F.{path}\n"
    report = screen_source(source, ALLOWED_IMPORTS)
    assert not report.passed and report.problems[0].line == BAD_LINE, report.reason
    assert " is not allowed" in report.reason


def test_hostile_candidate_files_are_refused_on_each_route():
    reexport = screen_source((CANDIDATES / "screen_reexported_save.py").read_text(), ALLOWED_IMPORTS)
    assert reexport.reason == ("line 17: `torch.nn.functional.torch.save` (that is `torch.save`) is not allowed: "
                               "it reads or writes files; file access belongs to the harness")
    smuggling = screen_source((CANDIDATES / "screen_module_smuggling.py").read_text(), ALLOWED_IMPORTS)
    lines = {p.line: p.message for p in smuggling.problems}
    assert set(lines) == {15, 18, 19, 22, 23, 24}, smuggling.reason
    assert lines[15].startswith("`torch` is a module") and lines[18].startswith("`torch` is a module")
    assert lines[19].startswith("`module` (that is `torch`) is a module")
    assert "`.builtins` is not allowed" in lines[23]
    assert lines[24] == "`eval` is not allowed: it runs code the screen cannot see"


def test_reexported_save_is_invalid_before_anything_runs(tmp_path):
    result = evaluate(CANDIDATES / "screen_reexported_save.py", "mqar", "smoke", out_dir=tmp_path / "out", threads=1)
    assert result.status is Status.INVALID and "(that is `torch.save`)" in result.reason
    assert [c.name for c in result.checks] == ["screen"] and result.isolation == ""


@pytest.mark.parametrize("name", VALID_CANDIDATES)
def test_unusual_valid_candidate_files_pass_the_screen(name):
    report = screen_source((CANDIDATES / name).read_text(), ALLOWED_IMPORTS)
    assert report.passed, report.reason


@pytest.mark.slow
@pytest.mark.parametrize("name", VALID_CANDIDATES)
def test_unusual_valid_candidate_files_evaluate_ok(tmp_path, name):
    result = evaluate(CANDIDATES / name, "mqar", "smoke", out_dir=tmp_path / "out", threads=1)
    assert result.status is Status.OK, result.reason


@pytest.mark.parametrize("construct", REFUSED.values(), ids=REFUSED.keys())
def test_refused_construct_names_its_line_and_why(construct):
    code, phrase = construct
    report = screen_source(HEADER + code + "\n", ALLOWED_IMPORTS)
    assert not report.passed
    lines_with_phrase = {p.line for p in report.problems if phrase in p.message}
    assert lines_with_phrase and min(lines_with_phrase) >= BAD_LINE, report.reason
    assert f"line {min(lines_with_phrase)}: " in report.reason


def test_syntax_error_reports_the_parsers_line_and_message():
    report = screen_source(HEADER + "x = 1\ndef f(:\n    pass\n", ALLOWED_IMPORTS)
    assert not report.passed and report.problems[0].line == 5
    assert report.reason.startswith("line 5: syntax error:") and "def f(:" in report.reason


def test_oversized_file_is_refused_without_parsing():
    report = screen_source("x = 1\n" * 40_000, ALLOWED_IMPORTS)
    assert not report.passed and "at most 200 KB" in report.reason


def test_null_bytes_are_refused_with_a_reason():
    assert "cannot" in screen_source("x = 1\0", ALLOWED_IMPORTS).reason


def test_every_problem_is_reported_in_line_order():
    source = "import os\nimport torch\ntorch.save(1, 'p')\nf = open('x')\n"
    lines = [p.line for p in screen_source(source, ALLOWED_IMPORTS).problems]
    assert lines == [1, 3, 4]


def test_the_reason_stays_short_for_a_flood_of_problems():
    report = screen_source("import torch\n" + "torch.save(1, 'p')\n" * 100, ALLOWED_IMPORTS)
    assert len(report.problems) == 100
    assert report.reason.count("\n") == 20 and "80 more problems" in report.reason


def test_allowlist_is_taken_from_the_caller():
    assert screen_source("import einops\n", frozenset({"torch"})).reason.startswith("line 1: import of `einops`")
    with pytest.raises(TypeError, match="allowed_imports"):
        screen_source("import torch\n", "torch")


BENIGN = '''
"""A valid mixer using many allowed but unusual constructs."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache, partial, reduce
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Config:
    expand: int = 2
    sizes: list = field(default_factory=lambda: [1, 2])


@lru_cache(maxsize=8)
def decay_rates(n_heads: int) -> tuple:
    return tuple(1.0 - 2.0 ** (-5 - h) for h in range(n_heads))


class Gate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sigmoid()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = x.sigmoid()
        return grad * s * (1 - s)


class Mixer(nn.Module):
    __constants__ = ["n_heads"]

    def __init__(self, d_model: int, n_heads: int, expand: int = 2, **kwargs):
        super().__init__()
        self.n_heads = n_heads
        self._cfg = Config(expand=expand)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.act: Callable = partial(F.gelu, approximate="tanh")
        self.register_buffer("decay", torch.tensor(decay_rates(n_heads)), persistent=False)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.qkv.weight)
        with torch.no_grad():
            self.out.weight.mul_(0.1)

    def __repr__(self) -> str:
        return f"Mixer(heads={self.n_heads})"

    def forward(self, input: Tensor, state: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
        b, t, d = input.shape
        h = self.n_heads
        q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in self.qkv(input).chunk(3, dim=-1))
        scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(d // h)
        mask = torch.ones(t, t, device=input.device, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        y = scores.softmax(-1) @ v + F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = Gate.apply(y.transpose(1, 2).reshape(b, t, d))
        total = reduce(lambda a, c: a + c, [y, y]) / 2
        if hasattr(self, "out") and isinstance(total, Tensor) and not input.is_cuda:
            total = self.act(total)
        with torch.autocast(device_type=input.device.type, enabled=False):
            total = total.float().to(input.dtype)
        return self.out(total)


def run_twice(x, compile=None):  # a parameter may shadow a refused builtin's name
    compile = compile or (lambda v: v)
    return compile(compile(x))


if __name__ == "__main__":
    print(run_twice(Mixer(16, 2)(torch.randn(2, 5, 16)).shape), type(1))
'''


def test_benign_unusual_mixer_passes():
    report = screen_source(BENIGN, ALLOWED_IMPORTS)
    assert report.passed, report.reason
    assert report.problems == [] and report.reason == ""


def test_parameters_named_like_builtins_are_not_builtins():
    source = textwrap.dedent("""
        def forward(self, input, dir=1, vars=None):
            open = None
            return input * dir, open
        f = lambda compile: compile + 1
    """)
    assert screen_source(source, ALLOWED_IMPORTS).passed


@pytest.mark.parametrize("path", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_shipped_reference_candidates_pass(path):
    report = screen_source(path.read_text(), ALLOWED_IMPORTS)
    assert report.passed, f"{path.name}:\n{report.reason}"


@pytest.mark.parametrize("chain", ["torch.os.environ", "typing.sys.modules", "functools.types", "math.sys",
                                   "torch.nn.functional.torch.sys"])
def test_modules_reexported_by_allowed_packages_are_refused(chain):
    root = chain.split(".")[0]
    report = screen_source(f"import {root}\nimport torch.nn.functional\nvalue = {chain}\n", ALLOWED_IMPORTS)
    assert not report.passed and "line 3" in report.reason and "allowlist" in report.reason


def test_tensor_methods_sharing_a_name_with_modules_still_pass():
    source = "import torch\n\ndef pick(x, table):\n    return x.select(1, 0), table.copy(), x.real\n"
    assert screen_source(source, ALLOWED_IMPORTS).passed
