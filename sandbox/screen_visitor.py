"""The screen's visitor: one pass over a candidate's syntax tree that reports every construct outside the
allowlist (sandbox/screen.py says what the screen does and what it cannot see).

A pre-pass resolves imports and aliases (sandbox/screen_imports.py); the visit then checks every node,
tracking scopes (sandbox/screen_scopes.py), against the rules in sandbox/screen_rules.py, resolving
attribute chains on the real library objects (sandbox/screen_objects.py).
"""
from __future__ import annotations

import ast
import builtins
import string
import types
from dataclasses import dataclass

from sandbox.screen_imports import ImportedNames, attribute_chain, chain_root
from sandbox.screen_objects import Known, catalog
from sandbox.screen_rules import (
    ASSIGNABLE_DUNDER_NAMES,
    DECORATOR_ONLY,
    FORMAT_METHODS,
    FORMAT_REASON,
    INTERCEPTING_DUNDERS,
    READABLE_DUNDER_NAMES,
    SAFE_BUILTINS,
    builtin_reason,
    forbidden_attribute_reason,
    forbidden_torch_reason,
)
from sandbox.screen_scopes import (
    Scope,
    annotations,
    class_scope_names,
    comprehension_scope,
    function_scope,
    is_bound,
    module_scope,
)

_TYPE_USES = ("print", "str", "repr", "isinstance", "issubclass")


@dataclass(frozen=True)
class ScreenProblem:
    line: int
    col: int
    message: str


def _plain_format(template: ast.AST) -> bool:
    """A string literal whose `{fields}` name positions or keywords only, never `.attr` or `[key]`."""
    if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
        return False
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template.value) if name]
    except ValueError:
        return False
    return not any("." in name or "[" in name for name in fields)


class Screener(ast.NodeVisitor):
    """A pre-pass resolves imports and aliases; one visit then checks every node, tracking scopes."""

    def __init__(self, tree: ast.Module, allowed_imports: frozenset[str]):
        self._tree = tree
        self._catalog = catalog()
        self._found: list[ScreenProblem] = []
        self._parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        self._names = ImportedNames(tree, allowed_imports, self._catalog, self._report)
        self._file_classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                              and len(self._names.bindings.get(n.name, [])) == 1}
        self._scopes: list[Scope] = [module_scope(tree)]
        self._function_names: list[str] = []

    def problems(self) -> list[ScreenProblem]:
        self.visit(self._tree)
        return sorted(set(self._found), key=lambda p: (p.line, p.col, p.message))

    def _report(self, node: ast.AST, message: str) -> None:
        self._found.append(ScreenProblem(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), message))

    # --- scopes -----------------------------------------------------------------------------

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(default)  # defaults are evaluated in the enclosing scope
        if not isinstance(node, ast.Lambda):
            self._check_binding(node, node.name)
            if node.name in INTERCEPTING_DUNDERS:
                self._report(node, f"defining `{node.name}` is not allowed: it routes torch's (or numpy's) "
                                   "operations on your objects, including the harness's own, through this code")
            for decorator in node.decorator_list:
                self.visit(decorator)
            for annotation in annotations(node):
                self.visit(annotation)  # evaluated at definition time, in the enclosing scope
        for argument in (a for a in ast.walk(node.args) if isinstance(a, ast.arg)):
            self._check_import_rebinding(argument, argument.arg)
        body = node.body if isinstance(node.body, list) else [node.body]
        self._scopes.append(function_scope(node))
        self._function_names.append(getattr(node, "name", "<lambda>"))
        for statement in body:
            self.visit(statement)
        self._function_names.pop()
        self._scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function
    visit_Lambda = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_binding(node, node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        for base in node.bases:
            self._check_base(base)
            self.visit(base)
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self._report(keyword.value, "metaclasses are not allowed: they run code when classes are created "
                                            "and can rewrite them; use a plain class")
            self.visit(keyword.value)
        self._scopes.append(Scope("class", class_scope_names(node)))
        for statement in node.body:
            self.visit(statement)
        self._scopes.pop()

    def _check_base(self, base: ast.AST) -> None:
        target = base.value if isinstance(base, ast.Subscript) else base
        resolution = self._names.resolve_expression(target)
        if resolution is not None:
            obj = resolution.known.obj if resolution.known else None
            tensor = self._tensor_class()
            if isinstance(obj, type) and tensor is not None and issubclass(obj, tensor):
                self._report(base, f"subclassing `{resolution.known.path}` is not allowed: a tensor subclass runs "
                                   "candidate code inside the harness's own tensor operations (and can change its "
                                   "metrics); return plain tensors")
            return
        if isinstance(target, ast.Name) and (target.id in self._file_classes or (
                target.id in SAFE_BUILTINS and not is_bound(target.id, self._scopes))):
            return
        self._report(base, "class bases must be classes named directly (imported, a builtin, or defined with "
                           "`class` in this file), so the screen can tell what the class inherits")

    def _tensor_class(self) -> type | None:
        torch = self._catalog.import_module("torch").known
        return torch.obj.Tensor if torch is not None else None

    def _visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        self.visit(node.generators[0].iter)  # the first iterable is evaluated in the enclosing scope
        self._scopes.append(comprehension_scope(node))
        for index, generator in enumerate(node.generators):
            self.visit(generator.target)
            if index:
                self.visit(generator.iter)
            for condition in generator.ifs:
                self.visit(condition)
        for part in ("elt", "key", "value"):
            if getattr(node, part, None) is not None:
                self.visit(getattr(node, part))
        self._scopes.pop()

    visit_ListComp = _visit_comprehension
    visit_SetComp = _visit_comprehension
    visit_DictComp = _visit_comprehension
    visit_GeneratorExp = _visit_comprehension

    # --- bindings ----------------------------------------------------------------------------

    def _check_binding(self, node: ast.AST, name: str) -> None:
        """A binding may not rebind an import, nor shadow a refused builtin where lookups fall back to builtins."""
        self._check_import_rebinding(node, name)
        scope = self._scopes[-1]
        falls_back = scope.kind in ("module", "class") or name in scope.declared_global
        if falls_back and hasattr(builtins, name) and name not in SAFE_BUILTINS and not name.startswith("__"):
            self._report(node, f"binding `{name}` at {'class' if scope.kind == 'class' else 'module'} level is not "
                               f"allowed: until the binding runs, `{name}` is still the builtin, which is refused; "
                               "choose another name")

    def _check_import_rebinding(self, node: ast.AST, name: str) -> None:
        if name in self._names.import_lines and not isinstance(node, (ast.Import, ast.ImportFrom)):
            line = self._names.import_lines[name]
            self._report(node, f"`{name}` is bound by the import on line {line} and may not be rebound: "
                               "use another name")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_binding_shadow_only(node, (alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*" and node.module != "__future__":
                self._check_binding_shadow_only(node, alias.asname or alias.name)

    def _check_binding_shadow_only(self, node: ast.AST, name: str) -> None:
        scope = self._scopes[-1]
        if scope.kind in ("module", "class") and hasattr(builtins, name) and name not in SAFE_BUILTINS:
            self._report(node, f"importing as `{name}` is not allowed: it shadows a refused builtin; "
                               "import it under another name")

    # --- names and attributes --------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("__") and name.endswith("__"):
            usable = READABLE_DUNDER_NAMES if isinstance(node.ctx, ast.Load) else ASSIGNABLE_DUNDER_NAMES
            if name not in usable:
                self._report(node, f"the name `{name}` is not allowed: interpreter internals are off limits")
            return
        if not isinstance(node.ctx, ast.Load):
            self._check_binding(node, name)
            return
        if name in self._names.known:
            self._check_use(node, self._names.known[name])
        elif not is_bound(name, self._scopes):
            self._check_builtin(node, name)

    def _check_builtin(self, node: ast.Name, name: str) -> None:
        if name == "type":
            self._check_type_use(node)
        elif name not in SAFE_BUILTINS:
            self._report(node, builtin_reason(name) if hasattr(builtins, name) else
                         f"`{name}` is not allowed: it is neither defined in this file nor an allowed builtin")

    def _check_type_use(self, node: ast.Name) -> None:
        call = self._parents.get(id(node))
        if not (isinstance(call, ast.Call) and call.func is node):
            self._report(node, "`type` may only be called as `type(x)`: a type object builds classes at run time; "
                               "use `isinstance(x, C)` to test types")
            return
        if len(call.args) != 1 or call.keywords or isinstance(call.args[0], ast.Starred):
            self._report(call, "`type(name, bases, namespace)` is not allowed: define classes with `class`")
            return
        user = self._parents.get(id(call))
        if isinstance(user, (ast.Compare, ast.FormattedValue)) or (
                isinstance(user, ast.Call) and user.func is not call and isinstance(user.func, ast.Name)
                and user.func.id in _TYPE_USES):
            return
        self._report(call, "`type(x)` may only be compared or printed (`type(a) is type(b)`, `print(type(x))`): "
                           "a type object builds classes at run time; use `isinstance(x, C)` to test types")

    def _check_use(self, node: ast.AST, known: Known) -> None:
        """Where a library object may appear: a module only as `module.name`, some callables only as decorators."""
        parent = self._parents.get(id(node))
        if isinstance(known.obj, types.ModuleType):
            if not (isinstance(parent, ast.Attribute) and parent.value is node) and not self._is_hasattr(parent, node):
                written = ast.unparse(node)
                shown = f"`{written}`" + ("" if written == known.path else f" (that is `{known.path}`)")
                self._report(node, f"{shown} is a module and may be used only as `{known.path}.name` "
                                   "(passed around or stored, the screen cannot follow it); to rename it, write "
                                   f"`import {known.obj.__name__} as NAME`")
            return
        path = self._catalog.is_decorator_only(known.obj)
        if path is None:
            return
        decorates = parent if isinstance(parent, ast.Call) and parent.func is node else node
        owner = self._parents.get(id(decorates))
        if not (isinstance(owner, ast.ClassDef) and decorates in owner.decorator_list):
            self._report(node, f"`{known.path}` may only decorate a class: {DECORATOR_ONLY[path]}; applied to a "
                               "library class it would rewrite that class for the harness too")

    def _is_hasattr(self, call: ast.AST | None, node: ast.AST) -> bool:
        """`hasattr(F, "scaled_dot_product_attention")`: a feature test reads nothing back."""
        return (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "hasattr"
                and not is_bound("hasattr", self._scopes) and len(call.args) == 2 and call.args[0] is node
                and not call.keywords and isinstance(call.args[1], ast.Constant)
                and isinstance(call.args[1].value, str) and not call.args[1].value.startswith("_"))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = attribute_chain(node)
        if chain is not None and chain[0].id in self._names.known:
            self._check_known_chain(node, self._names.known[chain[0].id], chain[1])
            return
        self._check_attribute_name(node, node.attr, receiver=node.value)
        self.generic_visit(node)

    def _check_known_chain(self, node: ast.Attribute, known: Known, attributes: list[str]) -> None:
        """Walk `root.a.b.c` on the real objects; report the first refused step once, at the outermost node."""
        written = ".".join([known.path, *attributes])
        reason = forbidden_torch_reason(written)
        if reason:
            self._report(node, reason)
            return
        for attr in attributes:
            if attr.startswith("_"):
                self._check_attribute_name(node, attr, receiver=None)
                return
            resolution = self._catalog.attribute(known, attr)
            if resolution.problem:
                self._report(node, resolution.problem)
                return
            known = resolution.known
        self._check_use(node, known)

    def _check_attribute_name(self, node: ast.AST, attr: str, receiver: ast.AST | None = None) -> None:
        if attr.startswith("__") and attr.endswith("__"):
            if not self._is_super_init(attr, receiver):
                self._report(node, f"accessing the dunder attribute `{attr}` is not allowed "
                                   "(defining dunder methods is fine; call `super().__init__(...)` to initialise)")
        elif attr.startswith("_"):
            if not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls") and not attr.startswith("__")):
                self._report(node, f"accessing the private attribute `{attr}` is not allowed "
                                   "(private attributes are fine only on `self`)")
        elif attr in FORMAT_METHODS:
            if not _plain_format(receiver):
                self._report(node, f"`.{attr}` is not allowed here: {FORMAT_REASON}")
        elif forbidden_attribute_reason(attr):
            self._report(node, forbidden_attribute_reason(attr))

    def _is_super_init(self, attr: str, receiver: ast.AST | None) -> bool:
        return (attr == "__init__" and isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super" and bool(self._function_names)
                and self._function_names[-1] == "__init__")

    # --- writes into imported objects --------------------------------------------------------

    def _check_write_target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_write_target(element, verb)
            return
        if not isinstance(target, (ast.Attribute, ast.Subscript, ast.Starred)):
            return
        root = chain_root(target)
        patches = "it patches imported library code, which would change the harness too; keep changes inside " \
                  "your own classes"
        if isinstance(root, ast.Name) and root.id in self._names.known:
            chain = attribute_chain(target)
            what = ".".join([self._names.known[root.id].path, *chain[1]]) if chain else self._names.known[root.id].path
            self._report(target, f"{verb} `{what}` is not allowed: {patches}")
        elif isinstance(root, ast.Name) and root.id in self._names.holders and isinstance(target, ast.Attribute):
            self._report(target, f"{verb} an attribute of `{root.id}` is not allowed: `{root.id}` may hold "
                                 f"`{self._names.holders[root.id]}`, and {patches}")
        elif not isinstance(root, ast.Name) and isinstance(target, ast.Attribute):
            self._report(target, f"{verb} an attribute of a computed object is not allowed: assign attributes "
                                 "only through a name (`self.x = ...`), so the screen can tell whose they are")
        else:
            through = target.value if isinstance(target, ast.Attribute) else None
            while isinstance(through, (ast.Attribute, ast.Subscript)):
                if isinstance(through, ast.Attribute) and through.attr in self._names.holder_attributes:
                    self._report(target, f"{verb} an attribute of `.{through.attr}` is not allowed: it may hold "
                                         f"`{self._names.holder_attributes[through.attr]}`, and {patches}")
                    return
                through = through.value

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

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._check_write_target(node.optional_vars, "assigning to")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_write_target(target, "deleting")
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._check_binding(node.target, node.target.id)
        self.visit(node.value)

    def visit_Global(self, node: ast.Global) -> None:
        self._check_rebinding(node, "global")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._check_rebinding(node, "nonlocal")

    def _check_rebinding(self, node: ast.Global | ast.Nonlocal, keyword: str) -> None:
        for name in node.names:
            if name in self._names.import_lines:
                self._report(node, f"`{keyword} {name}` is not allowed: `{name}` is an imported module; "
                                   "do not rebind imports")
