"""The worker's runtime guard on its own: real Python processes arm it for a fake candidate file and try things.

Each attempt is a function of the candidate file, so candidate code is on the stack exactly as in the
worker; the driver (`python -c`) armed the guard, so its own frame counts as the harness's.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from evaluator.evaluate import PROJECT_ROOT

CANDIDATE = '''
import functools, gc, math, os, sys, typing
from dataclasses import dataclass, field
import torch
from torch import nn

class Mixer(nn.Module):
    def forward(self, x):
        return x

def write_result():
    open("result-forged.json", "w").write("{}")

def os_open_for_writing():
    os.open("forged.json", os.O_WRONLY | os.O_CREAT)

def read_environ():
    open("/proc/self/environ", "rb").read()

def read_parent_environ():
    open(f"/proc/{os.getppid()}/environ", "rb").read()

def reopen_a_descriptor():
    open(1, "w")

def exec_string():
    exec("x = 1")

def compile_code():
    compile("x = 1", "candidate.py", "exec")

def replace_code():
    write_result.__code__.replace(co_name="other")

def new_function():
    type(write_result)(write_result.__code__, {})

def socket_connect():
    sys.modules["socket"].create_connection(("127.0.0.1", 9), timeout=1)

def subprocess_run():
    sys.modules["subprocess"].run(["true"])

def system():
    os.system("true")

def kill_parent():
    os.kill(os.getppid(), 0)

def ctypes_memory():
    sys.modules["ctypes"].string_at(id(1), 8)

def getframe():
    sys._getframe()

def traceback_frame():
    try:
        1 / 0
    except ZeroDivisionError as error:
        error.__traceback__.tb_frame

def generator_frame():
    (i for i in ()).gi_frame

def gc_objects():
    gc.get_objects()

def gc_referrers():
    gc.get_referrers(Mixer)

def settrace():
    sys.settrace(lambda *args: None)

def add_audit_hook():
    heard = []
    sys.addaudithook(lambda event, args: heard.append(event))
    sys.audit("archlab.test")
    return not heard  # refused silently: CPython drops a hook that an existing hook objects to

def import_new_module():
    import smtplib

def import_through_dunder():
    __import__("xmlrpc.client")

def remove_file():
    os.remove("candidate.py")

def list_directory():
    os.listdir(".")

# What must keep working.

def torch_ops():
    x = torch.randn(4, 8, requires_grad=True)
    y = torch.fft.irfft(torch.fft.rfft(x, dim=-1), n=8, dim=-1)
    (y.softmax(-1) @ torch.randn(8, 3)).sum().backward()
    return float(x.grad.abs().sum()) > 0

def torch_lazy_import():
    import torch.utils.checkpoint  # torch imports more of itself
    return torch.nn.functional.scaled_dot_product_attention(*(torch.randn(1, 2, 4, 8),) * 3).shape[-1] == 8

def dataclass_and_namedtuple():
    @dataclass(frozen=True)
    class Config:
        width: int = 4
        tags: tuple = field(default_factory=tuple)

    class Pair(typing.NamedTuple):
        left: int
        right: int
    T = typing.TypeVar("T")
    return Config().width + Pair(1, 2).right == 6

def cached():
    @functools.lru_cache(maxsize=4)
    def square(n):
        return n * n
    return square(3) + square(3) == 18

def read_own_file():
    return "write_result" in open(__file__).read()

def signal_itself():
    os.kill(os.getpid(), 0)
    return True
'''

DRIVER = '''
import json, sys, ctypes, gc, socket, subprocess  # loaded first: the guard must refuse the act, not the import
from pathlib import Path
from evaluator.candidate_loader import describe_failure, load_mixer_class
from evaluator.families.mixer import ALLOWED_IMPORTS
from evaluator.guard import arm
candidate = Path(sys.argv[1]).resolve()
status, _ = arm(candidate, ALLOWED_IMPORTS)
load_mixer_class(candidate)
module = sys.modules["archlab_candidate"]
outcomes = {}
for name in sys.argv[2:]:
    try:
        outcomes[name] = ["ok", getattr(module, name)()]
    except BaseException as error:
        outcomes[name] = ["refused", describe_failure(error, candidate, name)]
print(json.dumps({"status": status.detail, "outcomes": outcomes}))
'''

REFUSED = {
    "write_result": "open('result-forged.json', 'w') is refused: nothing may write files",
    "os_open_for_writing": "is refused: nothing may write files while a candidate is loaded",
    "read_environ": "open('/proc/self/environ') is refused: a candidate may read only",
    "read_parent_environ": "/environ') is refused",
    "reopen_a_descriptor": "open(1) is refused: a candidate may not open file descriptors",
    "exec_string": "compile is refused: candidate code may not compile or run code",
    "compile_code": "compile is refused",
    "replace_code": "code.__new__ is refused",
    "new_function": "function.__new__ is refused",
    "socket_connect": "socket.getaddrinfo is refused: a candidate may not open network connections",
    "subprocess_run": "subprocess.Popen is refused: a candidate may not start processes",
    "system": "os.system is refused",
    "kill_parent": "is refused: a candidate may not signal other processes",
    "ctypes_memory": "ctypes.string_at is refused: ctypes reaches raw memory",
    "getframe": "sys._getframe is refused: frames reach the harness's locals",
    "traceback_frame": "object.__getattr__('tb_frame') is refused",
    "generator_frame": "object.__getattr__('gi_frame') is refused",
    "gc_objects": "gc.get_objects is refused",
    "gc_referrers": "gc.get_referrers is refused",
    "settrace": "sys.settrace is refused",
    "import_new_module": "import of 'smtplib' is refused: candidates may import only __future__, dataclasses",
    "import_through_dunder": "import of 'xmlrpc",
    "remove_file": "os.remove('candidate.py') is refused",
    "list_directory": "os.listdir is refused",
}
ALLOWED = ["torch_ops", "torch_lazy_import", "dataclass_and_namedtuple", "cached", "read_own_file", "signal_itself",
           "add_audit_hook"]  # the last one "works" only in that the candidate's hook never hears anything


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("guard")
    (work / "candidate.py").write_text(textwrap.dedent(CANDIDATE))
    completed = subprocess.run([sys.executable, "-c", DRIVER, "candidate.py", *REFUSED, *ALLOWED], cwd=work,
                               capture_output=True, text=True, timeout=120,
                               env={"PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
                                    "PYTHONDONTWRITEBYTECODE": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["status"].startswith("audit hook armed") and not (work / "result-forged.json").exists()
    assert (work / "candidate.py").exists() and not (work / "forged.json").exists()
    return report["outcomes"]


@pytest.mark.parametrize("attempt", sorted(REFUSED))
def test_the_guard_refuses_with_the_line_and_why(outcomes, attempt):
    verdict, reason = outcomes[attempt]
    assert verdict == "refused", reason
    assert "raised GuardRefusal at line" in reason and "archlab runtime guard: " in reason
    assert REFUSED[attempt] in reason


@pytest.mark.parametrize("attempt", ALLOWED)
def test_what_a_mixer_needs_still_works(outcomes, attempt):
    assert outcomes[attempt] == ["ok", True]


def test_the_harness_frames_stay_unrestricted_and_failures_are_described(tmp_path):
    """describe_failure walks tracebacks (tb_frame) and the harness may still import what it needs."""
    (tmp_path / "candidate.py").write_text("import torch\nfrom torch import nn\n\n\nclass Mixer(nn.Module):\n"
                                           "    def forward(self, x):\n        return x.nonexistent()\n")
    script = textwrap.dedent('''
        import sys, torch
        from pathlib import Path
        from evaluator.candidate_loader import describe_failure, load_mixer_class
        from evaluator.guard import arm
        candidate = Path("candidate.py").resolve()
        arm(candidate, {"torch"})
        mixer = load_mixer_class(candidate)()
        try:
            mixer(torch.zeros(1))
        except AttributeError as error:
            print(describe_failure(error, candidate, "forward"))
        import json, xml.dom  # the harness (not candidate code) imports freely
    ''')
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, env={"PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "forward raised AttributeError at line 7: `return x.nonexistent()`" in completed.stdout
