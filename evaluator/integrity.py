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

import torch
import torch.nn.functional as F

Snapshot = dict[str, object]


def _watched_namespaces() -> dict[str, object]:
    harness = {name: module for name, module in sys.modules.items()
               if name == "evaluator" or name.startswith("evaluator.")}
    return {**harness, "torch": torch, "torch.nn.functional": F, "torch.Tensor": torch.Tensor,
            "torch.nn.Module": torch.nn.Module, "torch.optim.AdamW": torch.optim.AdamW,
            "builtins": builtins, "math": math}


def take_snapshot() -> Snapshot:
    """Every function, class and module bound in the watched namespaces, by qualified name."""
    snapshot = {}
    for prefix, namespace in _watched_namespaces().items():
        for name, value in list(vars(namespace).items()):
            if callable(value) or isinstance(value, types.ModuleType):
                snapshot[f"{prefix}.{name}"] = value
    return snapshot


def replaced_since(snapshot: Snapshot) -> list[str]:
    """Qualified names whose object is no longer the one in the snapshot."""
    namespaces = _watched_namespaces()
    changed = []
    for qualified, value in snapshot.items():
        prefix, _, name = qualified.rpartition(".")
        namespace = namespaces.get(prefix)
        if namespace is None or vars(namespace).get(name) is not value:
            changed.append(qualified)
    return changed
