"""Errors the command line turns into exit code 2 with a message that says what to fix, and the
wording of configuration problems in archlab's own words (no validation library's phrasing)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module on every start: keep pydantic out of it
    from pydantic import ValidationError


class UsageError(Exception):
    """Bad usage or configuration: the message tells the user what to change."""


def _problem(error: dict[str, Any]) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    wording = {
        "missing": "is required",
        "extra_forbidden": "is not a known setting (see docs/configuration.md)",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "bool_parsing": "must be true or false", "bool_type": "must be true or false",
        "int_parsing": "must be a whole number", "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number", "float_type": "must be a number",
        "string_type": "must be a string (in quotes)",
        "list_type": "must be a list, e.g. [\"cuda:0\"]",
        "dict_type": "must be a table (a [section] or { key = value })",
        "model_type": "must be a table (a [section] or { key = value })",
        "path_type": "must be a path (a string)",
    }.get(kind)
    if wording is None:
        return f"is not valid ({kind.replace('_', ' ')})"
    return f"{wording}, got {value!r}" if kind not in ("missing", "extra_forbidden") and value is not None else wording


def validation_problems(error: "ValidationError") -> str:
    """'key: what is wrong' for each problem, joined by '; '."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {_problem(item)}" if where else _problem(item))
    return "; ".join(parts)
