"""Judge what an import-rooted name IS, by resolving it on the real library objects.

The orchestrator imports only the trusted allowed libraries, never the candidate, and walks each
attribute chain step by step with getattr, so a re-export (`torch.nn.functional.torch.save`,
`dataclasses.builtins.eval`) is judged as the object it reaches, not by how it is spelled.
"""
from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import types
from dataclasses import dataclass

from sandbox.screen_rules import (
    ALLOWED_MODULES,
    DECORATOR_ONLY,
    FORBIDDEN_TORCH_PATHS,
    MIXED_MODULES,
    REFUSED_CALLABLES,
    SAFE_BUILTINS,
    builtin_reason,
    forbidden_attribute_reason,
    forbidden_torch_reason,
)

_ALLOWED_LIST = ", ".join(sorted(name for name in ALLOWED_MODULES if name != "__future__"))
# Where a library function or class may come from (its `__module__`); anything else reached through
# an allowed module (`operator.attrgetter`, `types.FunctionType`, `os.system`) is refused.
_ALLOWED_ORIGINS = ("torch", "typing", "functools", "_functools", "dataclasses", "math", "einops", "builtins",
                    "abc", "collections", "enum")
_SCALARS = (int, float, complex, bool, str, bytes, type(None), type(Ellipsis), type(NotImplemented))
_CALLABLES = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.MethodDescriptorType,
              types.WrapperDescriptorType, types.MethodWrapperType, types.GetSetDescriptorType,
              types.MemberDescriptorType, types.ClassMethodDescriptorType, property, classmethod, staticmethod,
              functools.partial)
_LIBRARY_STATE = ("library state shared with the harness; a candidate may use library functions, classes and "
                  "constants only")


@dataclass(frozen=True)
class Known:
    """A real library object a name in the candidate stands for, and the dotted path that reached it."""
    obj: object
    path: str


@dataclass(frozen=True)
class Resolution:
    known: Known | None
    problem: str | None = None


def _is_pybind(obj: object) -> bool:
    """TorchScript/JIT and runtime bindings (file readers, IR import, graph internals) are pybind11 objects."""
    owner = getattr(obj, "__self__", None) if isinstance(obj, types.BuiltinFunctionType) else None
    return any(type(o).__module__ == "pybind11_builtins" for o in (obj, type(obj), owner) if o is not None)


class Catalog:
    """The allowed libraries as imported here, and the refused objects among them, keyed by identity."""

    def __init__(self) -> None:
        self._refused: dict[int, tuple[object, str, str]] = {}   # id -> (object kept alive, path, reason)
        self._decorator_only: dict[int, tuple[object, str]] = {}
        for path, why in FORBIDDEN_TORCH_PATHS.items():
            self._remember(self._refused, path, (path, why))
        for path, why in REFUSED_CALLABLES.items():
            self._remember(self._refused, path, (path, why))
        for path in DECORATOR_ONLY:
            self._remember(self._decorator_only, path, (path,))
        self._builtins = {id(value): name for name, value in vars(builtins).items()
                          if callable(value) and name not in SAFE_BUILTINS}
        self._refused_origins = tuple(p for p in FORBIDDEN_TORCH_PATHS if p not in MIXED_MODULES)

    @staticmethod
    def _remember(table: dict, path: str, entry: tuple) -> None:
        """Resolve `path` without importing anything new; what is not loaded cannot be reached as an object."""
        parts = path.split(".")
        try:
            obj = importlib.import_module(parts[0]) if parts[0] in ALLOWED_MODULES else None
        except ImportError:
            return
        for part in parts[1:]:
            obj = inspect.getattr_static(obj, part, None)
            if obj is None:
                return
        table[id(obj)] = (obj, *entry)

    # --- imports and attribute steps ------------------------------------------------------------

    def import_module(self, name: str) -> Resolution:
        """`import name`: it must be an allowed module that imports here."""
        if name not in ALLOWED_MODULES:
            return Resolution(None, f"import of `{name}` is not allowed: the allowed modules are {_ALLOWED_LIST}")
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            return Resolution(None, f"`{name}` is allowed but not installed where candidates are evaluated "
                                    f"({error}); use torch operations instead")
        return Resolution(Known(module, name))

    def attribute(self, known: Known, name: str) -> Resolution:
        """One public step `known.name`, judged on the object it reaches."""
        path = f"{known.path}.{name}"
        # A module re-exported under another path (`torch.nn.functional.torch`) is judged by its own name too.
        canonical = f"{known.obj.__name__}.{name}" if isinstance(known.obj, types.ModuleType) else path
        reason = forbidden_torch_reason(path) or forbidden_attribute_reason(name)
        if reason is None and forbidden_torch_reason(canonical):
            reason = forbidden_torch_reason(canonical).replace(f"`{canonical}`", f"`{path}` (that is `{canonical}`)", 1)
        if reason:
            return Resolution(None, reason)
        try:
            value = getattr(known.obj, name)
        except AttributeError:
            if isinstance(known.obj, types.ModuleType) and f"{known.obj.__name__}.{name}" in ALLOWED_MODULES:
                return self.import_module(f"{known.obj.__name__}.{name}")
            return Resolution(None, f"`{path}` does not exist in the installed {self._version(known)}; "
                                    "check the name (the screen resolves every library name it is given)")
        except Exception as error:  # a library property that fails on the class: not resolvable statically
            return Resolution(None, f"`{path}` cannot be resolved statically ({type(error).__name__}); "
                                    "use a documented function or class")
        problem = self.judge(value, path)
        return Resolution(None if problem else Known(value, path), problem)

    @staticmethod
    def _version(known: Known) -> str:
        top = known.path.split(".")[0]
        version = getattr(importlib.import_module(top), "__version__", None) if top in ALLOWED_MODULES else None
        return f"{top} {version}" if isinstance(version, str) else top

    # --- what an object is ----------------------------------------------------------------------

    def judge(self, obj: object, path: str) -> str | None:
        """Why the library object reached as `path` may not be used, or None."""
        if isinstance(obj, types.ModuleType):
            if obj.__name__ in ALLOWED_MODULES:
                return None
            shown = f"`{path}`" + ("" if path == obj.__name__ else f" (the module `{obj.__name__}`)")
            return (f"{shown} is not allowed: it is a module outside the allowlist; "
                    f"the allowed modules are {_ALLOWED_LIST}")
        if id(obj) in self._refused:
            _, canonical, why = self._refused[id(obj)]
            shown = f"`{path}`" + ("" if path == canonical else f" (that is `{canonical}`)")
            return f"{shown} is not allowed: {why}"
        if id(obj) in self._builtins:
            name = self._builtins[id(obj)]
            return f"`{path}` is the builtin `{name}`: " + builtin_reason(name)
        origin = getattr(obj, "__module__", None) if isinstance(obj, _CALLABLES) else None
        if isinstance(origin, str):
            refused = next((p for p in self._refused_origins if origin == p or origin.startswith(p + ".")), None)
            if refused:
                return f"`{path}` is defined in `{origin}`, which is not allowed: {FORBIDDEN_TORCH_PATHS[refused]}"
            if origin.split(".")[0] not in _ALLOWED_ORIGINS:
                return (f"`{path}` comes from the module `{origin}`, which is outside the allowlist; "
                        "use torch, math or your own code instead")
        if _is_pybind(obj):
            return (f"`{path}` is not allowed: it is a TorchScript/runtime binding (it can load code or files), "
                    "not a tensor operation")
        if self._plain_value(obj):
            return None
        return f"`{path}` is not allowed: a `{type(obj).__name__}` object is {_LIBRARY_STATE}"

    @staticmethod
    def _plain_value(obj: object) -> bool:
        if isinstance(obj, _CALLABLES + _SCALARS):
            return True
        if isinstance(obj, (tuple, frozenset)):
            return all(isinstance(item, _SCALARS) for item in obj)
        owner = type(obj).__module__
        # dtypes, layouts and memory formats are torch's constants; typing's special forms are annotations.
        return owner in ("torch", "typing", "dataclasses") or owner.startswith("einops")

    def is_decorator_only(self, obj: object) -> str | None:
        """The path of a callable that may only decorate a class of the file, or None."""
        entry = self._decorator_only.get(id(obj))
        return entry[1] if entry else None


@functools.lru_cache(maxsize=1)
def catalog() -> Catalog:
    """Built once per process: importing torch and resolving the refused paths takes a moment."""
    return Catalog()
