"""Which names a scope binds, following Python's rules, so the screen knows when a name is a builtin.

A name no enclosing scope binds is looked up in builtins at run time; the screen refuses such a
name unless it is an allowed builtin. Comprehensions are scopes of their own, walrus targets
inside them bind in the enclosing function, and class bodies are invisible to their methods.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

_OWN_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class Scope:
    kind: str                      # "module", "class", "function" or "comprehension"
    names: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)


def binding_names(node: ast.AST) -> list[str]:
    """The names this one node binds in the scope it appears in (not looking inside it)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        return [node.id]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"]
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [node.name]
    if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [node.rest]
    return []


def bound_names(body: list[ast.AST]) -> set[str]:
    """Names a scope binds itself, not looking into nested scopes (but seeing walrus targets in comprehensions)."""
    bound: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        bound.update(binding_names(node))
        if isinstance(node, _OWN_SCOPES):
            continue
        if isinstance(node, _COMPREHENSIONS):
            bound.update(n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)
                         and isinstance(n.target, ast.Name))
            continue
        pending.extend(ast.iter_child_nodes(node))
    return bound


def declared(body: list[ast.AST], kind: type[ast.Global] | type[ast.Nonlocal]) -> set[str]:
    """Names declared `global`/`nonlocal` directly in this scope."""
    found: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, kind):
            found.update(node.names)
        if not isinstance(node, _OWN_SCOPES + _COMPREHENSIONS):
            pending.extend(ast.iter_child_nodes(node))
    return found


def parameters(arguments: ast.arguments) -> list[ast.arg]:
    every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
    return every + [a for a in (arguments.vararg, arguments.kwarg) if a is not None]


def annotations(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    found = [a.annotation for a in parameters(function.args) if a.annotation is not None]
    return found + ([function.returns] if function.returns is not None else [])


def module_scope(tree: ast.Module) -> Scope:
    """Module names, including those bound from inside functions (`global x; x = ...`)."""
    names = bound_names(tree.body)
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names |= declared(function.body, ast.Global) & bound_names(function.body)
    return Scope("module", names)


def class_scope_names(node: ast.ClassDef) -> set[str]:
    return bound_names(node.body)


def function_scope(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Scope:
    body = node.body if isinstance(node.body, list) else [node.body]
    globals_ = declared(body, ast.Global)
    names = ({a.arg for a in parameters(node.args)} | bound_names(body)) - globals_
    return Scope("function", names, globals_)


def comprehension_scope(node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> Scope:
    targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    return Scope("comprehension", targets)


def is_bound(name: str, scopes: list[Scope]) -> bool:
    """Whether `name`, read in the innermost of `scopes`, resolves to a binding rather than to builtins.

    A class body's names are visible only in that body itself, not in its methods or comprehensions.
    """
    for depth, scope in enumerate(reversed(scopes)):
        if name in scope.declared_global:
            return name in scopes[0].names
        if scope.kind == "class" and depth > 0:
            continue
        if name in scope.names:
            return True
    return False
