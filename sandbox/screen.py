"""Static screening of candidate source: the first line of defence, run in the orchestrator.

The screen reads the syntax tree only; it never imports or executes the candidate. It refuses
the constructs a mixer has no business using (file, network, process and dynamic-code access,
process-wide torch settings, reflection through underscore attributes, monkeypatching imported
modules) and says, per problem, which line to change and why, so a coder agent can repair it.

It is not a proof of safety: a determined adversary can still reach a module object through a
function argument and patch it. The sandbox's runtime isolation is the second line of defence.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from sandbox.screen_rules import (
    ASSIGNABLE_DUNDER_NAMES,
    ESCAPING_BUILTINS,
    MAX_SOURCE_BYTES,
    READABLE_DUNDER_NAMES,
    forbidden_attribute_reason,
    forbidden_torch_reason,
)

MAX_PROBLEMS_IN_REASON = 20


@dataclass(frozen=True)
class ScreenProblem:
    line: int
    col: int
    message: str


@dataclass
class ScreenReport:
    passed: bool
    problems: list[ScreenProblem] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """One problem per line, "line N: ...", capped so a flood of problems stays readable."""
        shown = [f"line {p.line}: {p.message}" for p in self.problems[:MAX_PROBLEMS_IN_REASON]]
        hidden = len(self.problems) - len(shown)
        if hidden > 0:
            shown.append(f"... and {hidden} more problems of the same kinds")
        return "\n".join(shown)


def screen_source(source: str, allowed_imports: frozenset[str]) -> ScreenReport:
    """Screen one candidate file against the import allowlist and the forbidden constructs."""
    if not isinstance(source, str):
        raise TypeError(f"screen_source needs the candidate's text as str, got {type(source).__name__}")
    if isinstance(allowed_imports, str) or not all(isinstance(name, str) for name in allowed_imports):
        raise TypeError("allowed_imports must be a set of top-level package names, e.g. frozenset({'torch', 'math'})")
    size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        return _refused(1, 0, f"the file is {size // 1024} KB; a candidate may be at most "
                              f"{MAX_SOURCE_BYTES // 1024} KB: keep it to one compact module")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        line_text = (error.text or "").strip()
        shown = f" in `{line_text}`" if line_text else ""
        return _refused(error.lineno or 1, error.offset or 0, f"syntax error: {error.msg}{shown}")
    except ValueError as error:  # e.g. null bytes in the source
        return _refused(1, 0, f"the file cannot be parsed: {error}")
    try:
        problems = _Screener(tree, frozenset(allowed_imports)).problems()
    except RecursionError:
        return _refused(1, 0, "the code is nested too deeply to screen; flatten the expressions")
    return ScreenReport(passed=not problems, problems=problems)


def _refused(line: int, col: int, message: str) -> ScreenReport:
    return ScreenReport(passed=False, problems=[ScreenProblem(line, col, message)])


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a scope binds itself (assignments, defs, imports, loop targets), not looking into nested scopes."""
    bound: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue  # own scopes: their names do not shadow anything outside
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return bound


def _parameters(arguments: ast.arguments) -> list[ast.arg]:
    every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
    return every + [a for a in (arguments.vararg, arguments.kwarg) if a is not None]


def _annotations(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    found = [a.annotation for a in _parameters(function.args) if a.annotation is not None]
    return found + ([function.returns] if function.returns is not None else [])


def _attribute_chain(node: ast.AST) -> tuple[str, list[str]] | None:
    """`a.b.c` -> ("a", ["b", "c"]); None when the chain does not start at a plain name."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, attributes[::-1]
    return None


def _chain_root(node: ast.AST) -> ast.AST:
    """The object at the bottom of `a.b[c].d`, looking through attributes and subscripts."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node


class _Screener(ast.NodeVisitor):
    """One pass over the tree; scopes are tracked so a parameter named `input` is not the builtin."""

    def __init__(self, tree: ast.Module, allowed_imports: frozenset[str]):
        self._tree = tree
        self._allowed = allowed_imports
        self._found: list[ScreenProblem] = []
        self._module_bound = _bound_names(tree.body) | self._assigned_globals(tree)
        self._scopes: list[set[str]] = []       # names bound by each enclosing function
        self._function_names: list[str] = []
        self._modules = self._module_aliases(tree)  # local name -> dotted module path it stands for

    def problems(self) -> list[ScreenProblem]:
        self.visit(self._tree)
        return sorted(set(self._found), key=lambda p: (p.line, p.col, p.message))

    def _report(self, node: ast.AST, message: str) -> None:
        self._found.append(ScreenProblem(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), message))

    # --- what names stand for -------------------------------------------------------------

    @staticmethod
    def _assigned_globals(tree: ast.Module) -> set[str]:
        """Module names bound from inside functions (`global x; x = ...`); a bare `global open` binds nothing."""
        assigned: set[str] = set()
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                declared = {n for stmt in ast.walk(function) if isinstance(stmt, ast.Global) for n in stmt.names}
                assigned |= declared & _bound_names(function.body)
        return assigned

    @staticmethod
    def _module_aliases(tree: ast.Module) -> dict[str, str]:
        """Every name bound to an imported object, and names assigned from such names (`F2 = F`)."""
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        changed = True
        while changed:  # follow `X = torch.nn; Y = X.functional` to a fixed point
            changed = False
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    chain = _attribute_chain(node.value)
                    name = node.targets[0].id
                    if chain and chain[0] in aliases and name not in aliases:
                        aliases[name] = ".".join([aliases[chain[0]], *chain[1]])
                        changed = True
        return aliases

    def _dotted(self, node: ast.AST) -> str | None:
        """The full dotted path of an attribute chain rooted in an import, e.g. `F.relu` -> torch.nn.functional.relu."""
        chain = _attribute_chain(node)
        if chain is None or chain[0] not in self._modules:
            return None
        return ".".join([self._modules[chain[0]], *chain[1]])

    def _is_local(self, name: str) -> bool:
        return any(name in scope for scope in self._scopes)

    def _is_builtin(self, name: str) -> bool:
        return not self._is_local(name) and name not in self._module_bound

    # --- scopes -----------------------------------------------------------------------------

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(default)  # defaults are evaluated in the enclosing scope
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                self.visit(decorator)
            for annotation in _annotations(node):
                self.visit(annotation)  # evaluated at definition time, in the enclosing scope
        body = node.body if isinstance(node.body, list) else [node.body]
        declared_global = {n for stmt in ast.walk(node) if isinstance(stmt, ast.Global) for n in stmt.names}
        self._scopes.append(({a.arg for a in _parameters(node.args)} | _bound_names(body)) - declared_global)
        self._function_names.append(getattr(node, "name", "<lambda>"))
        for statement in body:
            self.visit(statement)
        self._function_names.pop()
        self._scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function
    visit_Lambda = _visit_function

    # --- imports ----------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._report(node, "relative imports are not allowed: a candidate is one self-contained file; "
                               "define what you need in this file")
            return
        module = node.module or ""
        if not self._check_module(node, module):
            return
        for alias in node.names:
            if alias.name == "*":
                self._report(node, f"`from {module} import *` is not allowed: import the names you use explicitly")
            elif alias.name.startswith("_") and module != "__future__":
                self._report(node, f"importing the private name `{alias.name}` from `{module}` is not allowed")
            else:
                self._check_forbidden_path(node, f"{module}.{alias.name}")
                self._check_attribute_name(node, alias.name)

    def _check_module(self, node: ast.AST, module: str) -> bool:
        top = module.split(".")[0]
        if top not in self._allowed:
            allowed = ", ".join(sorted(self._allowed - {"__future__"}))
            self._report(node, f"import of `{module}` is not allowed; allowed packages: {allowed}")
            return False
        if any(part.startswith("_") for part in module.split(".")) and module != "__future__":
            self._report(node, f"import of the private module `{module}` is not allowed")
            return False
        return self._check_forbidden_path(node, module)

    def _check_forbidden_path(self, node: ast.AST, dotted: str) -> bool:
        reason = forbidden_torch_reason(dotted)
        if reason:
            self._report(node, reason)
        return reason is None

    # --- names and attributes --------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("__") and name.endswith("__"):
            usable = READABLE_DUNDER_NAMES if isinstance(node.ctx, ast.Load) else ASSIGNABLE_DUNDER_NAMES
            if name not in usable:
                self._report(node, f"the name `{name}` is not allowed: interpreter internals are off limits")
        elif name in ESCAPING_BUILTINS and isinstance(node.ctx, ast.Load) and self._is_builtin(name):
            self._report(node, f"`{name}` is not allowed: {ESCAPING_BUILTINS[name]}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        reason = forbidden_torch_reason(dotted) if dotted else None
        if reason:
            self._report(node, reason)
            return  # the rest of the chain is the same path: report it once, at its outermost point
        self._check_attribute_name(node, node.attr, receiver=node.value)
        self.generic_visit(node)

    def _check_attribute_name(self, node: ast.AST, attr: str, receiver: ast.AST | None = None) -> None:
        if attr.startswith("__") and attr.endswith("__"):
            if not self._is_super_init(attr, receiver):
                self._report(node, f"accessing the dunder attribute `{attr}` is not allowed "
                                   "(defining dunder methods is fine; call `super().__init__(...)` to initialise)")
        elif attr.startswith("_"):
            if not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls") and not attr.startswith("__")):
                self._report(node, f"accessing the private attribute `{attr}` is not allowed "
                                   "(private attributes are fine only on `self`)")
        elif forbidden_attribute_reason(attr):
            self._report(node, forbidden_attribute_reason(attr))

    def _is_super_init(self, attr: str, receiver: ast.AST | None) -> bool:
        return (attr == "__init__" and isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super" and bool(self._function_names)
                and self._function_names[-1] == "__init__")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "type" and self._is_builtin("type")
                and (len(node.args) == 3 or any(isinstance(a, ast.Starred) for a in node.args))):
            self._report(node, "`type(name, bases, namespace)` is not allowed: define classes with `class`")
        self.generic_visit(node)

    # --- writes into imported modules --------------------------------------------------------

    def _check_write_target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_write_target(element, verb)
            return
        if not isinstance(target, (ast.Attribute, ast.Subscript, ast.Starred)):
            return
        root = _chain_root(target)
        if isinstance(root, ast.Name) and root.id in self._modules:
            what = self._dotted(target) or self._modules[root.id]
            self._report(target, f"{verb} `{what}` is not allowed: it patches imported library code, which "
                                 "would change the harness too; keep changes inside your own classes")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_write_target(target, "assigning to")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_write_target(node.target, "assigning to")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_write_target(node.target, "assigning to")
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._check_write_target(node.target, "assigning to")
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._check_write_target(node.optional_vars, "assigning to")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_write_target(target, "deleting")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self._check_rebinding(node, "global")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._check_rebinding(node, "nonlocal")

    def _check_rebinding(self, node: ast.Global | ast.Nonlocal, keyword: str) -> None:
        for name in node.names:
            if name in self._modules:
                self._report(node, f"`{keyword} {name}` is not allowed: `{name}` is an imported module; "
                                   "do not rebind imports")
