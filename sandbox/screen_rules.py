"""What the static screen allows and refuses, each refusal with the reason a coder needs to fix it.

Kept apart from the tree walk in `screen_visitor.py` so the policy can be read (and reviewed) as data.
The screen works by ALLOWLIST: modules in ALLOWED_MODULES, builtins in SAFE_BUILTINS; the
denylists below name what is refused *inside* those (a torch function that writes files) and
attribute names refused on objects the screen cannot identify statically (a tensor's `.storage`).
"""
from __future__ import annotations

MAX_SOURCE_BYTES = 200 * 1024

_FILES = "it reads or writes files; file access belongs to the harness"
_CODE = "it loads, compiles or generates code outside the candidate file"
_SETTINGS = "it changes a process-wide setting owned by the harness"
_SEEDS = "seeds and random state belong to the harness (it fixes them per evaluation)"
_PROCESSES = "it starts processes or communication channels; a candidate is one module in one process"
_INSTRUMENTS = "it instruments the whole process, including the harness"
_HOOKS = "hooks run candidate code inside the harness's own forward/backward passes and change what its checks see"
_MEMORY = "it exposes raw memory behind a tensor; use tensor operations"

# Modules a candidate may import or reach as `module.name`, with what they are for. A module
# reached any other way (`torch.nn.functional.torch.os`, `typing.sys`) is refused. Not listed on
# purpose: torch.nn.modules/parameter/utils/attention (use the names torch.nn exports), torch.func,
# torch.distributions, torch.sparse, torch.autograd.functional/forward_ad/graph.
ALLOWED_MODULES: dict[str, str] = {
    "torch": "tensor operations", "torch.nn": "layers", "torch.nn.functional": "functional layers",
    "torch.nn.init": "parameter initialisation", "torch.fft": "FFTs", "torch.linalg": "linear algebra",
    "torch.special": "special functions", "torch.amp": "`torch.amp.autocast`",
    "torch.autograd": "custom gradients (`torch.autograd.Function`, `torch.autograd.grad`)",
    "torch.autograd.function": "`once_differentiable` for custom gradients",
    "math": "scalar maths", "typing": "annotations", "functools": "partial, lru_cache, reduce",
    "dataclasses": "configuration records", "einops": "rearrange/repeat/reduce",
    "einops.layers": "einops layers", "einops.layers.torch": "einops layers", "__future__": "annotations",
}

# Dotted paths (and everything below them) a candidate may not touch, with why. Each is also
# resolved to its object, so a re-export (`torch.nn.functional.torch.save`) is caught as itself;
# objects defined in the modules named here are refused wherever they are reached.
FORBIDDEN_TORCH_PATHS: dict[str, str] = {
    "torch.save": _FILES, "torch.load": _FILES, "torch.from_file": _FILES, "torch.storage": _FILES,
    "torch.serialization": _FILES, "torch.package": _FILES, "torch.hub": _FILES,
    "torch.get_file_path": _FILES,
    "torch.utils": _CODE, "torch.ops": _CODE, "torch.library": _CODE, "torch.classes": _CODE,
    "torch.jit": _CODE, "torch.compile": _CODE, "torch.fx": _CODE, "torch.export": _CODE,
    "torch.onnx": _CODE, "torch.testing": _CODE, "torch.compiler": _CODE,
    "torch.backends": _SETTINGS, "torch.cuda": _SETTINGS + " (device placement too: use `x.device`)",
    "torch.mps": _SETTINGS, "torch.use_deterministic_algorithms": _SETTINGS,
    "torch.get_device_module": _SETTINGS + " (it returns a device module such as torch.cuda)",
    "torch.autograd.set_detect_anomaly": _SETTINGS, "torch.autograd.set_grad_enabled": _SETTINGS,
    "torch.manual_seed": _SEEDS, "torch.seed": _SEEDS, "torch.set_rng_state": _SEEDS, "torch.random": _SEEDS,
    "torch.default_generator": _SEEDS + " (create your own `torch.Generator()` if you need one)",
    "torch.multiprocessing": _PROCESSES, "torch.distributed": _PROCESSES,
    "torch.prepare_multiprocessing_environment": _PROCESSES,
    "torch.profiler": _INSTRUMENTS, "torch.autograd.profiler": _INSTRUMENTS, "torch.autograd.graph": _INSTRUMENTS,
    "torch.overrides": _INSTRUMENTS, "torch.nn.modules.module": _INSTRUMENTS,
}
# Entries above that are modules holding allowed definitions too (nn.Module lives in
# torch.nn.modules.module): only the path itself is refused, not everything defined there.
MIXED_MODULES = frozenset({"torch.nn.modules.module"})

# Library callables that may only decorate a class defined in the file: applied to a library
# class they rewrite that class (its `__init__`, comparisons) for the harness too.
DECORATOR_ONLY: dict[str, str] = {
    "dataclasses.dataclass": "write `@dataclass` (or `@dataclass(...)`) on a class defined in this file",
    "functools.total_ordering": "write `@total_ordering` on a class defined in this file",
}
# Library callables refused outright (allowed modules, public names), with why and what instead.
REFUSED_CALLABLES: dict[str, str] = {
    "dataclasses.make_dataclass": "it builds a class from a namespace the screen cannot see; "
                                  "write `@dataclass class ...` instead",
    "typing.get_type_hints": "it evaluates annotation strings as code",
    "typing.ForwardRef": "it evaluates annotation strings as code",
    "functools.singledispatch": "it evaluates annotation strings as code",
    "functools.singledispatchmethod": "it evaluates annotation strings as code",
}

# Attribute names refused on any object, because of where they lead.
FORBIDDEN_ATTRIBUTE_NAMES: dict[str, str] = {
    "numpy": "numpy objects reach files and raw memory; stay with torch tensors",
    "asnumpy": "numpy objects reach files and raw memory; stay with torch tensors",
    "tofile": _FILES,
    "from_file": _FILES,
    "get_type_hints": "it evaluates annotation strings as code",
    "ForwardRef": "it evaluates annotation strings as code",
    "singledispatch": "it evaluates annotation strings as code",
    "singledispatchmethod": "it evaluates annotation strings as code",
    "storage": _MEMORY, "untyped_storage": _MEMORY, "data_ptr": _MEMORY, "set_": _MEMORY,
    "share_memory_": _PROCESSES,
    "as_subclass": "a tensor subclass lets candidate code run inside the harness's own tensor operations "
                   "(and change its metrics); return plain tensors",
    "grad_fn": "walking the autograd graph reaches the harness's tensors and its hooks; "
               "use `torch.autograd.Function` for custom gradients",
    **{name: "frames and code objects reach other modules' namespaces" for name in (
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "gi_frame", "gi_code",
        "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "tb_frame", "tb_next",
        "co_code", "co_consts", "with_traceback")},
}
# Packages re-export the modules they import (`torch.os`, `typing.sys`, `torch.nn.functional.np`):
# on objects the screen cannot identify, these names are refused. Names that are also common tensor
# or container methods (`select`, `copy`, `signal`, `code`) are left out.
_REEXPORTED_MODULE = "it reaches a module outside the import allowlist through an allowed one"
FORBIDDEN_ATTRIBUTE_NAMES.update({name: _REEXPORTED_MODULE for name in (
    "os", "sys", "posix", "nt", "subprocess", "builtins", "importlib", "imp", "ctypes", "socket", "ssl", "io",
    "pathlib", "shutil", "tempfile", "glob", "pickle", "marshal", "copyreg", "shelve", "inspect", "gc", "types",
    "weakref", "operator", "threading", "_thread", "multiprocessing", "concurrent", "asyncio", "np",
    "runpy", "codeop", "pty", "site", "sysconfig", "platform", "zipimport", "pkgutil", "traceback",
    "linecache", "urllib", "http", "ftplib", "smtplib", "codecs", "mmap", "resource", "fcntl", "selectors",
    "atexit", "faulthandler", "tracemalloc", "dis", "ast", "logging", "warnings", "abc",
    "collections", "contextlib", "re", "json", "zipfile", "tarfile", "sqlite3", "dbm")})
FORBIDDEN_ATTRIBUTE_PREFIXES: dict[str, str] = {
    "register_module_": "global module hooks would change the harness's backbone too",
    "register_load_state_dict": _HOOKS,
    "register_state_dict": _HOOKS,
}

# Dunder methods a class may not define: with them, torch (or numpy/dlpack conversions) route the
# harness's own operations on a returned object through candidate code.
INTERCEPTING_DUNDERS: frozenset[str] = frozenset({
    "__torch_function__", "__torch_dispatch__", "__array__", "__array_function__", "__array_ufunc__",
    "__array_interface__", "__cuda_array_interface__", "__dlpack__", "__dlpack_device__",
})

# Builtins a candidate may use by name. Everything else is refused; those a coder might reach
# for get a specific reason in ESCAPING_BUILTINS.
SAFE_BUILTINS: frozenset[str] = frozenset({
    "abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "classmethod", "complex", "dict",
    "divmod", "enumerate", "filter", "float", "format", "frozenset", "hasattr", "hash", "hex", "id", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord",
    "pow", "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod",
    "str", "sum", "super", "tuple", "type", "zip", "NotImplemented", "Ellipsis",
    # Exceptions a mixer may raise or catch. SystemExit stays: the worker reports it with its line.
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "FloatingPointError", "ImportError",
    "IndexError", "KeyError", "LookupError", "ModuleNotFoundError", "NameError", "NotImplementedError",
    "OverflowError", "RecursionError", "RuntimeError", "StopIteration", "SystemExit", "TypeError",
    "UnboundLocalError", "ValueError", "ZeroDivisionError", "Warning", "UserWarning", "DeprecationWarning",
    "FutureWarning", "RuntimeWarning",
})

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
    "bytearray": "raw memory access is not needed by a mixer; use tensors",
    "breakpoint": "it is interactive; nothing answers inside the sandbox",
    "input": "it is interactive; nothing answers inside the sandbox",
    "help": "it is interactive; nothing answers inside the sandbox",
    "exit": "it ends the harness's process; raise an exception instead",
    "quit": "it ends the harness's process; raise an exception instead",
    "BaseException": "catching it swallows the harness's own interrupts; use `Exception`",
    "KeyboardInterrupt": "catching it swallows the harness's own interrupts; use `Exception`",
    "GeneratorExit": "catching it swallows the harness's own interrupts; use `Exception`",
    "MemoryError": "out-of-memory is the harness's verdict to give; do not catch it",
}
# `"...".format(obj)` reads `{0.attr}` and `{0[key]}` fields by name, out of the screen's sight.
FORMAT_METHODS = frozenset({"format", "format_map"})
FORMAT_REASON = ("format fields that read attributes or items (`{0.attr}`, `{0[key]}`) bypass the screen; "
                 "call `.format` on a string literal with plain fields, or use an f-string")
_UNLISTED_BUILTIN = "it is not among the builtins a mixer may use (see SAFE_BUILTINS in sandbox/screen_rules.py)"

# Dunder names a module may use as plain names: read `__name__`/`__doc__`; set the class-level declarations.
READABLE_DUNDER_NAMES = frozenset({"__name__", "__doc__"})
ASSIGNABLE_DUNDER_NAMES = frozenset({"__all__", "__slots__", "__constants__", "__doc__"})


def builtin_reason(name: str) -> str:
    """Why the builtin `name` is refused (only called for builtins outside SAFE_BUILTINS)."""
    return f"`{name}` is not allowed: {ESCAPING_BUILTINS.get(name, _UNLISTED_BUILTIN)}"


def forbidden_torch_reason(dotted: str) -> str | None:
    """Why the dotted path (e.g. `torch.cuda.is_available`) is refused, or None when it is allowed."""
    parts = dotted.split(".")
    if parts[0] != "torch" or len(parts) < 2:
        return None
    for depth in range(2, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        if prefix in FORBIDDEN_TORCH_PATHS:
            return f"`{dotted}` is not allowed: {FORBIDDEN_TORCH_PATHS[prefix]}"
        if parts[depth - 1].startswith("set_") and _names_a_torch_module(parts[:depth - 1]):
            suggestion = " (use `torch.no_grad()` for gradients)" if parts[depth - 1] == "set_grad_enabled" else ""
            return f"`{dotted}` is not allowed: {_SETTINGS}{suggestion}"
    if parts[1].endswith("Storage"):
        return f"`{dotted}` is not allowed: storages map files; use tensors"
    return None


def _names_a_torch_module(parts: list[str]) -> bool:
    """`torch.set_x` and `torch.autograd.set_x` are settings; `torch.Tensor.set_` is a tensor method."""
    return ".".join(parts) in ALLOWED_MODULES


def forbidden_attribute_reason(attr: str) -> str | None:
    """Why `.attr` is refused on any object, or None."""
    if attr in FORBIDDEN_ATTRIBUTE_NAMES:
        return f"`.{attr}` is not allowed: {FORBIDDEN_ATTRIBUTE_NAMES[attr]}"
    if attr.startswith("register_") and "hook" in attr:
        return f"`.{attr}` is not allowed: {_HOOKS}"
    for prefix, why in FORBIDDEN_ATTRIBUTE_PREFIXES.items():
        if attr.startswith(prefix):
            return f"`.{attr}` is not allowed: {why}"
    return None
