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
    return Snapshot(bound, class_names)


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
    return changed
