"""The screen's pre-pass: what each imported name (and each name assigned from one) stands for.

Imports are resolved on the real allowed libraries (sandbox/screen_objects.py). A name whose only
binding takes a library object (`L = nn.Linear`, in any scope) stands for that object; a name or
attribute that may hold one (`a, L = 1, nn.Linear`, `def f(L=nn.Linear)`, `self.L = nn.Linear`) is
remembered so that writes through it, which would patch the library for the harness too, are refused.
"""
from __future__ import annotations

import ast
import types
from typing import Callable

from sandbox.screen_objects import Catalog, Known, Resolution
from sandbox.screen_rules import forbidden_torch_reason
from sandbox.screen_scopes import binding_names


def attribute_chain(node: ast.AST) -> tuple[ast.Name, list[str]] | None:
    """`a.b.c` -> (Name a, ["b", "c"]); None when the chain does not start at a plain name."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    return (node, attributes[::-1]) if isinstance(node, ast.Name) else None


def chain_root(node: ast.AST) -> ast.AST:
    """The object at the bottom of `a.b[c].d`, looking through attributes and subscripts."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node


class ImportedNames:
    """Resolves the file's imports and library aliases once, before the screen's main visit."""

    def __init__(self, tree: ast.Module, allowed_imports: frozenset[str], catalog: Catalog,
                 report: Callable[[ast.AST, str], None]):
        self._tree = tree
        self._allowed = allowed_imports
        self._catalog = catalog
        self._report = report
        self.bindings = self.all_bindings(tree)
        self.known: dict[str, Known] = {}                    # name -> the library object it stands for
        self.import_lines: dict[str, int] = {}
        self.holders: dict[str, str] = {}                    # name -> library object it may hold
        self.holder_attributes: dict[str, str] = {}          # attribute name -> library object stored there
        self._resolve_imports()
        self._resolve_aliases()

    @staticmethod
    def all_bindings(tree: ast.Module) -> dict[str, list[ast.AST]]:
        """Every binding of every name, in every scope."""
        found: dict[str, list[ast.AST]] = {}
        for node in ast.walk(tree):
            names = binding_names(node) + ([node.arg] if isinstance(node, ast.arg) else [])
            names += list(node.names) if isinstance(node, (ast.Global, ast.Nonlocal)) else []
            for name in names:
                found.setdefault(name, []).append(node)
        return found

    def _resolve_imports(self) -> None:
        for node in ast.walk(self._tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    resolution = self._import_module(node, alias.name)
                    if resolution is None:
                        continue
                    if alias.asname:
                        self._bind_import(node, alias.asname, resolution)
                    else:
                        top = alias.name.split(".")[0]
                        self._bind_import(node, top, Known(self._catalog.import_module(top).known.obj, top))
            elif isinstance(node, ast.ImportFrom):
                self._resolve_from_import(node)

    def _resolve_from_import(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._report(node, "relative imports are not allowed: a candidate is one self-contained file; "
                               "define what you need in this file")
            return
        module = node.module or ""
        if module == "__future__":
            return
        parent = self._import_module(node, module)
        if parent is None:
            return
        for alias in node.names:
            if alias.name == "*":
                self._report(node, f"`from {module} import *` is not allowed: import the names you use explicitly")
            elif alias.name.startswith("_"):
                self._report(node, f"importing the private name `{alias.name}` from `{module}` is not allowed")
            else:
                resolution = self._catalog.attribute(parent, alias.name)
                if resolution.problem:
                    self._report(node, resolution.problem)
                else:
                    self._bind_import(node, alias.asname or alias.name, resolution.known)

    def _import_module(self, node: ast.AST, module: str) -> Known | None:
        top = module.split(".")[0]
        if top not in self._allowed:
            allowed = ", ".join(sorted(self._allowed - {"__future__"}))
            self._report(node, f"import of `{module}` is not allowed; allowed packages: {allowed}")
            return None
        if any(part.startswith("_") for part in module.split(".")):
            self._report(node, f"import of the private module `{module}` is not allowed")
            return None
        reason = forbidden_torch_reason(module)
        resolution = None if reason else self._catalog.import_module(module)
        if reason or resolution.problem:
            self._report(node, reason or resolution.problem)
            return None
        return resolution.known

    def _bind_import(self, node: ast.AST, name: str, known: Known) -> None:
        previous = self.known.get(name)
        if previous is not None and previous.obj is not known.obj:
            self._report(node, f"`{name}` is already bound by the import on line {self.import_lines[name]} to "
                               f"`{previous.path}`; import `{known.path}` under another name")
            return
        self.known[name] = known
        self.import_lines.setdefault(name, node.lineno)

    def _resolve_aliases(self) -> None:
        """`L = nn.Linear` (L's only binding, in any scope) makes L stand for the object itself; any other
        binding from a library object (`a, L = 1, nn.Linear`, `def f(L=nn.Linear)`, `for L in (...)`) makes
        L a possible holder of it, so writes through L are refused."""
        changed = True
        while changed:
            changed = False
            for node in ast.walk(self._tree):
                for target, value in self._assigned_pairs(node):
                    if isinstance(target, ast.Name) and target.id not in self.known \
                            and len(self.bindings.get(target.id, [])) == 1:
                        resolution = self.resolve_expression(value)
                        if resolution is not None and resolution.known is not None:
                            self.known[target.id] = resolution.known
                            changed = True
        for node in ast.walk(self._tree):
            for target, value in self._assigned_pairs(node):
                self._note_holder(target, value)

    @staticmethod
    def _assigned_pairs(node: ast.AST) -> list[tuple[ast.AST, ast.AST]]:
        """(target, value) for every binding that takes a value from an expression in the file."""
        if isinstance(node, ast.Assign):
            return [(target, node.value) for target in node.targets]
        if isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            return [(node.target, node.value)]
        looped = isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension))
        if looped and isinstance(node.iter, (ast.Tuple, ast.List)):
            return [(node.target, element) for element in node.iter.elts]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            positional = node.args.posonlyargs + node.args.args
            pairs = list(zip(positional[len(positional) - len(node.args.defaults):], node.args.defaults))
            pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
            return [(ast.Name(id=a.arg, ctx=ast.Store()), d) for a, d in pairs]
        return []

    def _note_holder(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                for element, item in zip(target.elts, value.elts):
                    self._note_holder(element, item)
            return
        values = [value.body, value.orelse] if isinstance(value, ast.IfExp) else \
            value.values if isinstance(value, ast.BoolOp) else [value]
        for item in values:
            resolution = self.resolve_expression(item)
            if resolution is None or resolution.known is None or isinstance(resolution.known.obj, types.ModuleType):
                continue
            if isinstance(target, ast.Name):
                self.holders.setdefault(target.id, resolution.known.path)
                self.holder_attributes.setdefault(target.id, resolution.known.path)  # `A.L` for a class attribute
            elif isinstance(target, ast.Attribute):
                self.holder_attributes.setdefault(target.attr, resolution.known.path)

    def resolve_expression(self, node: ast.AST) -> Resolution | None:
        """Resolve a Name/attribute chain rooted in a known name; None when it is not one."""
        chain = attribute_chain(node)
        if chain is None or chain[0].id not in self.known:
            return None
        known = self.known[chain[0].id]
        for attr in chain[1]:
            if attr.startswith("_"):
                return Resolution(None, "private")
            resolution = self._catalog.attribute(known, attr)
            if resolution.problem:
                return resolution
            known = resolution.known
        return Resolution(known)
