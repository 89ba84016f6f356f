"""What the static screen refuses, each with the reason a coder needs to fix it.

Kept apart from the tree walk in `screen.py` so the policy can be read (and reviewed) as data.
"""
from __future__ import annotations

MAX_SOURCE_BYTES = 200 * 1024

_FILES = "it reads or writes files; file access belongs to the harness"
_CODE = "it loads, compiles or generates code outside the candidate file"
_SETTINGS = "it changes a process-wide setting owned by the harness"
_SEEDS = "seeds and random state belong to the harness (it fixes them per evaluation)"
_PROCESSES = "it starts processes or communication channels; a candidate is one module in one process"
_INSTRUMENTS = "it instruments the whole process, including the harness"

# Dotted paths (and everything below them) a candidate may not touch, with why.
FORBIDDEN_TORCH_PATHS: dict[str, str] = {
    "torch.save": _FILES, "torch.load": _FILES, "torch.from_file": _FILES, "torch.storage": _FILES,
    "torch.serialization": _FILES, "torch.package": _FILES, "torch.hub": _FILES,
    "torch.utils": _CODE, "torch.ops": _CODE, "torch.library": _CODE, "torch.classes": _CODE,
    "torch.jit": _CODE, "torch.compile": _CODE, "torch.fx": _CODE, "torch.export": _CODE,
    "torch.onnx": _CODE, "torch.testing": _CODE,
    "torch.backends": _SETTINGS, "torch.cuda": _SETTINGS + " (device placement too: use `x.device`)",
    "torch.mps": _SETTINGS, "torch.use_deterministic_algorithms": _SETTINGS,
    "torch.autograd.set_detect_anomaly": _SETTINGS, "torch.autograd.set_grad_enabled": _SETTINGS,
    "torch.manual_seed": _SEEDS, "torch.seed": _SEEDS, "torch.set_rng_state": _SEEDS, "torch.random": _SEEDS,
    "torch.multiprocessing": _PROCESSES, "torch.distributed": _PROCESSES,
    "torch.profiler": _INSTRUMENTS, "torch.autograd.profiler": _INSTRUMENTS, "torch.autograd.graph": _INSTRUMENTS,
    "torch.overrides": _INSTRUMENTS, "torch.nn.modules.module": _INSTRUMENTS,
}

# Attribute names refused on any object, because of where they lead.
FORBIDDEN_ATTRIBUTE_NAMES: dict[str, str] = {
    "numpy": "numpy objects reach files and raw memory; stay with torch tensors",
    "tofile": _FILES,
    "from_file": _FILES,
    "get_type_hints": "it evaluates annotation strings as code",
    "ForwardRef": "it evaluates annotation strings as code",
    "singledispatch": "it evaluates annotation strings as code",
    "singledispatchmethod": "it evaluates annotation strings as code",
    **{name: "frames and code objects reach other modules' namespaces" for name in (
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "gi_frame", "gi_code",
        "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "tb_frame", "tb_next",
        "co_code", "co_consts", "with_traceback")},
}
# Packages re-export the modules they import (`torch.os`, `typing.sys`, `functools.types`): reaching a
# module outside the allowlist through an allowed one is the same escape as importing it. Names that
# are also common tensor or container methods (`select`, `copy`, `signal`, `code`) are left out.
_REEXPORTED_MODULE = "it reaches a module outside the import allowlist through an allowed one"
FORBIDDEN_ATTRIBUTE_NAMES.update({name: _REEXPORTED_MODULE for name in (
    "os", "sys", "posix", "nt", "subprocess", "builtins", "importlib", "imp", "ctypes", "socket", "ssl", "io",
    "pathlib", "shutil", "tempfile", "glob", "pickle", "marshal", "copyreg", "shelve", "inspect", "gc", "types",
    "weakref", "operator", "threading", "_thread", "multiprocessing", "concurrent", "asyncio",
    "runpy", "codeop", "pty", "site", "sysconfig", "platform", "zipimport", "pkgutil", "traceback",
    "linecache", "urllib", "http", "ftplib", "smtplib", "codecs", "mmap", "resource", "fcntl", "selectors", "atexit", "faulthandler", "tracemalloc", "dis", "ast", "logging", "warnings", "abc",
    "collections", "contextlib", "re", "json", "numpy", "zipfile", "tarfile", "sqlite3", "dbm")})
FORBIDDEN_ATTRIBUTE_PREFIXES: dict[str, str] = {
    "register_module_": "global module hooks would change the harness's backbone too",
}

# Builtins that escape the screen or the process, when not shadowed by a name the file binds.
ESCAPING_BUILTINS: dict[str, str] = {
    "open": _FILES,
    "eval": "it runs code the screen cannot see",
    "exec": "it runs code the screen cannot see",
    "compile": "it builds code the screen cannot see",
    "getattr": "dynamic attribute access bypasses the screen; use plain `obj.name` syntax",
    "setattr": "dynamic attribute access bypasses the screen; use plain `obj.name = value` syntax",
    "delattr": "dynamic attribute access bypasses the screen",
    "globals": "reflection over namespaces bypasses the screen",
    "locals": "reflection over namespaces bypasses the screen",
    "vars": "reflection over namespaces bypasses the screen",
    "dir": "reflection over namespaces bypasses the screen",
    "memoryview": "raw memory access is not needed by a mixer; use tensors",
    "breakpoint": "it is interactive; nothing answers inside the sandbox",
    "input": "it is interactive; nothing answers inside the sandbox",
    "help": "it is interactive; nothing answers inside the sandbox",
    "exit": "it ends the harness's process; raise an exception instead",
    "quit": "it ends the harness's process; raise an exception instead",
}

# Dunder names a module may use as plain names: read `__name__`/`__doc__`; set the class-level declarations.
READABLE_DUNDER_NAMES = frozenset({"__name__", "__doc__"})
ASSIGNABLE_DUNDER_NAMES = frozenset({"__all__", "__slots__", "__constants__", "__doc__"})


def forbidden_torch_reason(dotted: str) -> str | None:
    """Why the dotted path (e.g. `torch.cuda.is_available`) is refused, or None when it is allowed."""
    parts = dotted.split(".")
    if parts[0] != "torch" or len(parts) < 2:
        return None
    for depth in range(2, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        if prefix in FORBIDDEN_TORCH_PATHS:
            return f"`{dotted}` is not allowed: {FORBIDDEN_TORCH_PATHS[prefix]}"
    if parts[1].startswith("set_"):
        suggestion = " (use `torch.no_grad()` for gradients)" if parts[1] == "set_grad_enabled" else ""
        return f"`{dotted}` is not allowed: {_SETTINGS}{suggestion}"
    if parts[1].endswith("Storage"):
        return f"`{dotted}` is not allowed: storages map files; use tensors"
    return None


def forbidden_attribute_reason(attr: str) -> str | None:
    """Why `.attr` is refused on any object, or None."""
    if attr in FORBIDDEN_ATTRIBUTE_NAMES:
        return f"`.{attr}` is not allowed: {FORBIDDEN_ATTRIBUTE_NAMES[attr]}"
    for prefix, why in FORBIDDEN_ATTRIBUTE_PREFIXES.items():
        if attr.startswith(prefix):
            return f"`.{attr}` is not allowed: {why}"
    return None
