"""Static screening of candidate source: the first line of defence, run in the orchestrator.

The screen reads the syntax tree only; it never imports or executes the candidate. It works by
allowlist: imports and every attribute chain rooted in one are resolved step by step on the real
library objects (sandbox/screen_objects.py) and must stay inside the allowed modules, public names
and non-refused objects; a name the file does not bind must be an allowed builtin. Modules may be
used only as `module.name`, so they cannot flow where the screen cannot follow them. Each problem
names its line and says why, so a coder agent can repair it.

What it cannot see, being static (the sandbox's runtime layers are the second line of defence):
- values that flow through calls, returns, containers or arguments: a library class passed to a
  function (`patch(nn.Linear)`) can be patched through the parameter, and a library call that
  returns a module or refused object at run time is not known here;
- attributes of objects it cannot identify (tensors, instances, call results) are judged by name
  only (FORBIDDEN_ATTRIBUTE_NAMES), not by what they reach;
- what code it allows does with the values it is given: a custom `torch.autograd.Function` can
  report false gradients, in-place writes change the harness's input tensor, `.backward()` inside
  forward touches the harness's gradients;
- the installed library versions: names are resolved against the torch in this process, which may
  differ from the one where the worker runs.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from sandbox.screen_rules import MAX_SOURCE_BYTES
from sandbox.screen_visitor import ScreenProblem, Screener

__all__ = ["ScreenProblem", "ScreenReport", "screen_source"]

MAX_PROBLEMS_IN_REASON = 20


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
        problems = Screener(tree, frozenset(allowed_imports)).problems()
    except RecursionError:
        return _refused(1, 0, "the code is nested too deeply to screen; flatten the expressions")
    return ScreenReport(passed=not problems, problems=problems)


def _refused(line: int, col: int, message: str) -> ScreenReport:
    return ScreenReport(passed=False, problems=[ScreenProblem(line, col, message)])
