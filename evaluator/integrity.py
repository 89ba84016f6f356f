"""Notice candidate code that patched the harness or torch from inside the worker process.

The static screen refuses the obvious routes to other modules, but candidate code runs in the
worker's own interpreter, so anything it can reach it can replace (say `torch.Tensor.argmax`,
or the harness's metric function reached through a module attribute). The worker snapshots the
functions and classes of the harness and of the torch namespaces the metrics rely on before
loading the candidate, and compares them before trusting any metric. A replaced one makes the
evaluation invalid. This cannot stop a patch that undoes itself in time; it stops the plain ones.
"""
from __future__ import annotations

import builtins
import math
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Rebound by torch itself when torch._dynamo is first imported (a candidate using torch.compile
# triggers that); seeding is no route to forged metrics, so its rebinding is not tampering.
REBOUND_BY_TORCH = frozenset({"torch.manual_seed"})


@dataclass(frozen=True)
class Snapshot:
    bound: dict[str, object]              # "namespace.name" -> the function, class or module bound there
    class_names: dict[str, frozenset]     # class namespace -> its own attribute names (new ones shadow the base)
    kernels: dict[str, int]               # operator -> hash of its dispatcher table (torch.library can replace one)


def _watched_namespaces() -> dict[str, object]:
    harness = {name: module for name, module in sys.modules.items()
               if name == "evaluator" or name.startswith("evaluator.")}
    return {**harness, "torch": torch, "torch.nn.functional": F, "torch.Tensor": torch.Tensor,
            "torch.nn.Module": torch.nn.Module,
            "builtins": builtins, "math": math}


def take_snapshot() -> Snapshot:
    """Every function, class and module bound in the watched namespaces, by qualified name."""
    bound, class_names = {}, {}
    for prefix, namespace in _watched_namespaces().items():
        for name, value in list(vars(namespace).items()):
            qualified = f"{prefix}.{name}"
            if (callable(value) or isinstance(value, types.ModuleType)) and qualified not in REBOUND_BY_TORCH:
                bound[qualified] = value
        if isinstance(namespace, type):
            class_names[prefix] = frozenset(vars(namespace))
    return Snapshot(bound, class_names, _kernels())


def replaced_since(snapshot: Snapshot) -> list[str]:
    """Qualified names rebound since the snapshot, or added to a watched class (shadowing its base)."""
    namespaces = _watched_namespaces()
    changed = []
    for qualified, value in snapshot.bound.items():
        prefix, _, name = qualified.rpartition(".")
        namespace = namespaces.get(prefix)
        if namespace is None or vars(namespace).get(name) is not value:
            changed.append(qualified)
    for prefix, names in snapshot.class_names.items():
        changed += sorted(f"{prefix}.{name}" for name in set(vars(namespaces[prefix])) - names)
    kernels = _kernels()
    changed += sorted(f"the kernel of {op}" for op, table in snapshot.kernels.items() if kernels.get(op) != table)
    return changed


def _kernels() -> dict[str, int]:
    """Every operator's dispatcher table, hashed (about 0.1 s for all of them)."""
    return {op: hash(_DISPATCH_DUMP(op)) for op in _ALL_OPS()}


# Process-wide hook tables of torch.nn: filled, they change every module's output, the backbone's too.
GLOBAL_MODULE_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
                       "_global_forward_hooks_with_kwargs", "_global_backward_pre_hooks", "_global_backward_hooks",
                       "_global_buffer_registration_hooks", "_global_module_registration_hooks",
                       "_global_parameter_registration_hooks")
# Bound at import, before any candidate code, so rebinding `torch._C` or `torch.nn.modules.module` misleads nothing.
_MODULE_GLOBALS = vars(torch.nn.modules.module)
_FUNCTION_MODES, _DISPATCH_MODES = torch._C._len_torch_function_stack, torch._C._len_torch_dispatch_stack
_DISPATCH_DUMP, _ALL_OPS = torch._C._dispatch_dump, torch._C._dispatch_get_all_op_names
# What the loss and the metrics call, as bound at import: torch.Tensor's methods (its C base is immutable,
# but a name set on torch.Tensor shadows it) and torch.nn.functional. No audit event sees such a patch.
_CALLED_BY_METRICS = (("torch.Tensor", vars(torch.Tensor), dict(vars(torch.Tensor))),
                      ("torch.nn.functional", vars(F), dict(vars(F))))


def torch_interference() -> str:
    """What candidate code left active that intercepts the harness's torch calls, or ''.

    Cheap (well under a millisecond) and free of candidate code (C calls, exact-type checks,
    identity), so it runs between the backbone's forward and the first torch call on its logits,
    where a patch meant to undo itself during the metric is still in place.
    """
    problems = []
    if _FUNCTION_MODES():
        problems.append(f"{_FUNCTION_MODES()} TorchFunctionMode(s)")
    if _DISPATCH_MODES():
        problems.append(f"{_DISPATCH_MODES()} TorchDispatchMode(s)")
    hooks = _MODULE_GLOBALS
    for name in GLOBAL_MODULE_HOOKS:
        table = hooks.get(name)
        if type(table) not in (dict, OrderedDict) or table:
            problems.append(f"torch.nn.modules.module.{name}")
    if hooks.get("_global_is_full_backward_hook") is not None:
        problems.append("a global full backward hook")
    for prefix, now, then in _CALLED_BY_METRICS:
        problems += [f"a replaced {prefix}.{name}" for name in now.keys() - then.keys()]
        problems += [f"a replaced {prefix}.{name}" for name, value in then.items() if now.get(name) is not value]
    if not problems:
        return ""
    return (f"candidate code left {', '.join(problems)} active, which intercept(s) the harness's own torch calls "
            "(loss, metrics): a mixer may only compute its output; remove modes, global hooks and patches")
