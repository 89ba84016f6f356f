"""Normalised hashes of candidate source code, to catch resubmitted duplicates.

`code_hash` ignores formatting, comments and docstrings: two files with the same hash run
the same program. `structure_hash` also ignores the names the file chooses: local variables
and arguments (numbered per function, in order of first use), and its functions, classes,
module-level names and the attributes it assigns (numbered file-wide), and it resolves import
aliases (`F.softplus`, `fn.softplus` and `torch.nn.functional.softplus` hash alike); names
that come from outside the file (torch.exp, x.shape, range) are kept, since they carry meaning.
Both hashes keep every literal: numbers and strings are part of the algorithm (a decay of 0.9
versus 0.99, an einsum equation), so changing one is a real change.
"""
from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize
from dataclasses import dataclass, field

HASH_LENGTH = 16
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class SourceHashes:
    code_hash: str
    structure_hash: str


def source_hashes(source: str) -> SourceHashes:
    """Both hashes from a single parse (the cost of hashing is mostly parsing)."""
    tree = _parse_without_docstrings(source)
    if tree is None:
        fallback = _digest("tokens", _token_normalised(source))
        return SourceHashes(fallback, fallback)
    return SourceHashes(_digest("ast", _Serialiser(tree).text()),
                        _digest("structure", _CanonicalSerialiser(tree).text()))


def code_hash(source: str) -> str:
    """Equal for sources that differ only in whitespace, comments and docstrings."""
    tree = _parse_without_docstrings(source)
    if tree is None:
        return _digest("tokens", _token_normalised(source))
    return _digest("ast", _Serialiser(tree).text())


def structure_hash(source: str) -> str:
    """Equal for sources that also differ in the names they define (module docstring).

    Sources that do not parse fall back to `code_hash`'s token normalisation.
    """
    return source_hashes(source).structure_hash


def _digest(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()[:HASH_LENGTH]


def _parse_without_docstrings(source: str) -> ast.Module | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None
    owners = [tree]
    while owners:
        node = owners.pop()
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        owners.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, _DOCSTRING_OWNERS))
    return tree


def _token_normalised(source: str) -> str:
    """Fallback for files that do not parse: drop comments and layout, keep the tokens."""
    skipped = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
               tokenize.DEDENT, tokenize.ENDMARKER)
    try:
        return " ".join(t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                        if t.type not in skipped)
    except (tokenize.TokenError, SyntaxError):
        return " ".join(re.sub(r"#[^\n]*", "", source).split())


class _Serialiser:
    """The syntax tree as a flat token list: node types, fields, literals (ast.unparse is 2-3x slower)."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.out: list[str] = []

    def text(self) -> str:
        self.emit(self.tree)
        return "\x1f".join(self.out)

    def emit(self, node: ast.AST) -> None:
        self.generic(node)

    def generic(self, node: ast.AST) -> None:
        out = self.out
        out.append(type(node).__name__)
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                self.emit(value)
            elif isinstance(value, list):
                self.emit_list(value)
            else:
                out.append(repr(value))

    def emit_list(self, values: list) -> None:
        self.out.append("[")
        for item in values:
            if isinstance(item, ast.AST):
                self.emit(item)
            else:
                self.out.append(repr(item))
        self.out.append("]")


def _parameters(args: ast.arguments) -> list[ast.arg]:
    """In declaration order, which is also the order their canonical names are given in."""
    params = [*args.posonlyargs, *args.args]
    if args.vararg:
        params.append(args.vararg)
    params.extend(args.kwonlyargs)
    if args.kwarg:
        params.append(args.kwarg)
    return params


@dataclass
class _Scope:
    locals: set[str]
    names: dict[str, str] = field(default_factory=dict)


_Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


class _CanonicalSerialiser(_Serialiser):
    """Serialises with the names the file chooses replaced (see the module docstring)."""

    def __init__(self, tree: ast.Module):
        super().__init__(tree)
        self.aliases: dict[str, str] = {}                   # import alias -> qualified module path
        self.members: set[str] = set()                      # file-wide: globals, classes, methods, attributes
        self.signatures: dict[str, list[str] | None] = {}   # callable -> parameter names (None: ambiguous)
        self.bound: dict[_Function, set[str]] = {}          # function -> its local names
        self.member_names: dict[str, str] = {}
        self.scopes: list[_Scope] = []
        self._collect(tree)
        self.special = {
            ast.Name: self._name, ast.Attribute: self._attribute, ast.Import: self._skip,
            ast.ImportFrom: self._skip, ast.FunctionDef: self._function, ast.AsyncFunctionDef: self._function,
            ast.Lambda: self._function, ast.ClassDef: self._class, ast.Call: self._call,
            ast.ExceptHandler: self._handler, ast.Global: self._declaration, ast.Nonlocal: self._declaration,
        }

    # -- one pass over the tree to learn what is defined where ---------------------------------

    def _collect(self, tree: ast.Module) -> None:
        declared: dict[_Function, set[str]] = {}
        stack: list[tuple[ast.AST, _Function | None]] = [(child, None) for child in tree.body]
        while stack:
            node, owner = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is not ast.Load:
                    self._bind(owner, node.id)
                continue
            if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda):
                if kind is not ast.Lambda:
                    self._bind(owner, node.name)
                    self.members.add(node.name)
                    self._add_signature(node.name, node.args)
                self.bound[node] = {p.arg for p in _parameters(node.args)}
                body = node.body if isinstance(node.body, list) else [node.body]
                stack += [(child, node) for child in body]
                outer = [*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults,
                         getattr(node, "returns", None), *(p.annotation for p in _parameters(node.args))]
                stack += [(child, owner) for child in outer if child is not None]
                continue
            if kind is ast.ClassDef:
                self._bind(owner, node.name)
                self.members.add(node.name)
                init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                self._add_signature(node.name, init.args if init else None)
                stack += [(child, None) for child in node.body]  # class-level names are members
                stack += [(child, owner) for child in (*node.bases, *node.keywords, *node.decorator_list)]
                continue
            if kind is ast.Import:
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    self.aliases[alias.asname or top] = alias.name if alias.asname else top
                continue
            if kind is ast.ImportFrom:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
                continue
            if kind is ast.Attribute and type(node.ctx) is not ast.Load:
                self.members.add(node.attr)
            elif kind is ast.ExceptHandler and node.name:
                self._bind(owner, node.name)
            elif kind in (ast.Global, ast.Nonlocal) and owner is not None:
                declared.setdefault(owner, set()).update(node.names)
            stack += [(child, owner) for child in ast.iter_child_nodes(node)]
        for function, names in declared.items():
            self.bound[function] -= names
        self.members -= set(self.aliases)

    def _bind(self, owner: _Function | None, name: str) -> None:
        if owner is None:
            self.members.add(name)
        else:
            self.bound[owner].add(name)

    def _add_signature(self, name: str, args: ast.arguments | None) -> None:
        params = [p.arg for p in _parameters(args)] if args else []
        self.signatures[name] = params if self.signatures.get(name, params) == params else None

    # -- naming ---------------------------------------------------------------------------------

    def _member(self, name: str) -> str:
        if name.startswith("__") and name.endswith("__"):
            return name  # protocol names (__init__, __call__) are not choices
        return self.member_names.setdefault(name, f"g{len(self.member_names)}")

    def _resolve(self, name: str) -> str:
        """The canonical spelling of a name where it is used (unchanged if it comes from outside)."""
        for scope in reversed(self.scopes):
            if name in scope.locals:
                return scope.names.setdefault(name, f"v{len(scope.names)}")
        if name in self.aliases:
            return self.aliases[name]
        if name in self.members:
            return self._member(name)
        return name

    # -- emission -------------------------------------------------------------------------------

    def emit(self, node: ast.AST) -> None:
        handler = self.special.get(type(node))
        if handler is None:
            self.generic(node)
        else:
            handler(node)

    def _skip(self, node: ast.AST) -> None:
        """Imports: resolved at each use instead, so `import x as y` and `from . import x` agree."""

    def _name(self, node: ast.Name) -> None:
        resolved = self._resolve(node.id)
        ctx = type(node.ctx).__name__
        if node.id in self.aliases and resolved == self.aliases[node.id]:
            parts = resolved.split(".")  # spelled as the attribute chain `torch.nn.functional` would be
            self.out += ["Attribute"] * (len(parts) - 1) + ["Name", repr(parts[0]), "Load"]
            for part in parts[1:]:
                self.out += [repr(part), "Load"]
            self.out[-1] = ctx
        else:
            self.out += ["Name", repr(resolved), ctx]

    def _attribute(self, node: ast.Attribute) -> None:
        self.out.append("Attribute")
        self.emit(node.value)
        attr = self._member(node.attr) if node.attr in self.members else node.attr
        self.out += [repr(attr), type(node.ctx).__name__]

    def _function(self, node: _Function) -> None:
        """Decorators, defaults and annotations belong to the enclosing scope; parameters and the
        body to a new one."""
        self.out.append(type(node).__name__)
        if not isinstance(node, ast.Lambda):
            self.out.append(repr(self._resolve(node.name)))
            self.emit_list(node.decorator_list)
            self.emit_list([node.returns] if node.returns else [])
        args = node.args
        params = _parameters(args)
        self.emit_list(args.defaults)
        self.emit_list([d if d is not None else ast.Constant(value=None) for d in args.kw_defaults])
        self.emit_list([p.annotation or ast.Constant(value=None) for p in params])
        scope = _Scope(locals=self.bound[node])
        self.scopes.append(scope)
        self.out += [repr(len(args.posonlyargs)), repr(len(args.args)), repr(args.vararg is not None),
                     repr(len(args.kwonlyargs)), repr(args.kwarg is not None)]
        self.out += [repr(self._resolve(p.arg)) for p in params]
        self.emit_list(node.body if isinstance(node.body, list) else [node.body])
        self.scopes.pop()

    def _class(self, node: ast.ClassDef) -> None:
        self.out += ["ClassDef", repr(self._resolve(node.name))]
        for values in (node.bases, node.keywords, node.decorator_list, node.body):
            self.emit_list(values)

    def _call(self, node: ast.Call) -> None:
        """Keyword names follow the callee's renamed parameters when it is defined in this file."""
        target = node.func
        callee = target.id if isinstance(target, ast.Name) else \
            target.attr if isinstance(target, ast.Attribute) else None
        params = self.signatures.get(callee) if callee else None
        self.out.append("Call")
        self.emit(node.func)
        self.emit_list(node.args)
        for keyword in node.keywords:
            name = f"v{params.index(keyword.arg)}" if params and keyword.arg in params else keyword.arg
            self.out += ["keyword", repr(name)]
            self.emit(keyword.value)

    def _handler(self, node: ast.ExceptHandler) -> None:
        self.out.append("ExceptHandler")
        self.emit_list([node.type] if node.type else [])
        self.out.append(repr(self._resolve(node.name) if node.name else None))
        self.emit_list(node.body)

    def _declaration(self, node: ast.Global | ast.Nonlocal) -> None:
        self.out += [type(node).__name__, *(repr(self._resolve(name)) for name in node.names)]
