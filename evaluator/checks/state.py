"""What a mixer holds besides its registered parameters, found by walking everything it can reach.

Candidate code can keep tensors in plain lists, dicts or objects, in closures of its hooks, in
class attributes or in module-level globals; none of that is in `parameters()`. The walk visits
every submodule's `__dict__` (recursively through lists, tuples, dicts, plain objects and the
candidate's own functions) and the candidate module's globals, so that hidden trainable state
can be counted against the budget and state that keeps changing between calls can be named.
"""
from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from evaluator.candidate_loader import MODULE_NAME

SCALARS = (bool, int, float, complex, str, bytes, type(None))
MAX_DEPTH = 12
SKIPPED_ATTRIBUTES = frozenset({"training"})  # flipped by train()/eval(), not by the candidate


@dataclass(frozen=True)
class Held:
    """One value reachable from the mixer: where it lives and what it is."""

    path: str
    value: Any


def _is_candidate(value: Any) -> bool:
    return getattr(value, "__module__", None) == MODULE_NAME


def _walk(value: Any, path: str, seen: set[int], depth: int) -> Iterator[Held]:
    if isinstance(value, SCALARS):
        yield Held(path, value)
        return
    if isinstance(value, torch.Tensor):
        yield Held(path, value)
        if depth <= MAX_DEPTH and id(value) not in seen and vars(value):  # attributes set on a tensor object
            seen.add(id(value))
            for name, item in vars(value).items():
                yield from _walk(item, f"{path}.{name}", seen, depth + 1)
        return
    if depth > MAX_DEPTH or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, nn.Module):
        for name, item in vars(value).items():
            if name in ("_parameters", "_buffers", "_modules"):
                for key, child in item.items():
                    if child is not None:
                        yield from _walk(child, f"{path}.{key}", seen, depth + 1)
            elif name not in SKIPPED_ATTRIBUTES:
                yield from _walk(item, f"{path}.{name}", seen, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", seen, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}[{key!r}]", seen, depth + 1)
    elif isinstance(value, types.MethodType):
        yield from _walk(value.__func__, path, seen, depth + 1)
    elif isinstance(value, types.FunctionType):
        if _is_candidate(value):  # hooks and helpers may keep state in defaults or closures
            extra = [("defaults", value.__defaults__), ("kwdefaults", value.__kwdefaults__)]
            extra += [(f"closure[{i}]", cell.cell_contents) for i, cell in enumerate(value.__closure__ or ())
                      if _cell_filled(cell)]
            for name, item in extra:
                if item is not None:
                    yield from _walk(item, f"{path}.<{name}>", seen, depth + 1)
    elif isinstance(value, type):
        if _is_candidate(value):  # class attributes of the candidate's own classes
            for name, item in vars(value).items():
                if not name.startswith("__"):
                    yield from _walk(item, f"{path}.{name}", seen, depth + 1)
    elif _is_candidate(type(value)) and hasattr(value, "__dict__"):
        for name, item in vars(value).items():
            yield from _walk(item, f"{path}.{name}", seen, depth + 1)


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def candidate_globals(module: nn.Module) -> dict[str, Any]:
    """The candidate file's module namespace, reached through a function its class defines."""
    for cls in type(module).__mro__:
        for item in vars(cls).values():
            if isinstance(item, types.FunctionType) and _is_candidate(item):
                return item.__globals__
    return {}


def reachable(module: nn.Module, prefix: str) -> Iterator[Held]:
    """Every tensor and scalar the module reaches, with its path (e.g. `blocks.0.mixer.memory[3]`)."""
    seen: set[int] = set()
    yield from _walk(module, prefix, seen, 0)
    for name, item in candidate_globals(module).items():
        if not name.startswith("__") and not isinstance(item, types.ModuleType):
            yield from _walk(item, f"<candidate global> {name}", seen, 0)


def digest(value: Any) -> str:
    """A cheap exact signature of a value: shape, dtype and a hash of a tensor's bytes."""
    if not isinstance(value, torch.Tensor):
        return repr(value)[:200]
    data = value.detach().to("cpu").contiguous().reshape(-1)
    raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
    return f"{tuple(value.shape)}:{value.dtype}:{hashlib.blake2b(raw, digest_size=16).hexdigest()}"


def fingerprint(module: nn.Module, prefix: str) -> dict[str, str]:
    """Signature of everything the module holds except its registered parameters (the optimiser's)."""
    parameters = {id(p) for p in module.parameters()}
    return {held.path: digest(held.value) for held in reachable(module, prefix) if id(held.value) not in parameters}


def changed_entries(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths whose value changed, appeared or disappeared between two fingerprints."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


@dataclass(frozen=True)
class HiddenTensor:
    path: str
    shape: tuple[int, ...]
    elements: int
    why: str  # "requires grad" or "changed during a training step"


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def held_tensors(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """Tensors the model reaches that are not its registered parameters (nor views of them), by path."""
    parameter_storage = {_storage(p) for p in model.parameters()}
    found: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for held in reachable(model, prefix):
        tensor = held.value
        if not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
            continue
        storage = _storage(tensor)
        if storage in parameter_storage or storage in storages:
            continue
        storages.add(storage)
        found[held.path] = tensor
    return found


def snapshot(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    return {path: digest(tensor) for path, tensor in tensors.items()}


def hidden_trainable(tensors: dict[str, torch.Tensor], before: dict[str, str]) -> list[HiddenTensor]:
    """Held tensors that require grad, or whose content differs from `before` (or that are new)."""
    hidden = []
    for path, tensor in tensors.items():
        if tensor.requires_grad:
            why = "requires grad"
        elif before.get(path) != digest(tensor):
            why = "changed during training" if path in before else "appeared during training"
        else:
            continue
        hidden.append(HiddenTensor(path, tuple(tensor.shape), tensor.numel(), why))
    return hidden


def describe_hidden(hidden: list[HiddenTensor], limit: int = 5) -> str:
    shown = [f"`{h.path}` (shape {list(h.shape)}, {h.elements:,} elements, {h.why})" for h in hidden[:limit]]
    more = f" and {len(hidden) - limit} more" if len(hidden) > limit else ""
    return ", ".join(shown) + more
