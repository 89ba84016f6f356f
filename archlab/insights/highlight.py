"""Code and diffs as HTML, highlighted on the server with Pygments (no JavaScript, no CDN).

Pygments escapes the text it formats, so hostile code renders as text. The CSS for the classes
it emits is `stylesheet()`, shipped with the pages (and inlined by a self-contained report).
"""
from __future__ import annotations

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

STYLE = "friendly"


def _formatter(line_numbers: bool) -> HtmlFormatter:
    return HtmlFormatter(style=STYLE, cssclass="highlight", linenos="table" if line_numbers else False,
                         lineanchors="L" if line_numbers else "", wrapcode=True)


def python_html(code: str, line_numbers: bool = True) -> str:
    """The code as a highlighted <div class="highlight"> block, lines numbered and anchored (#L-12)."""
    return highlight(code, PythonLexer(), _formatter(line_numbers))


def diff_html(diff: str) -> str:
    return highlight(diff, DiffLexer(), _formatter(False))


def stylesheet() -> str:
    return _formatter(True).get_style_defs(".highlight")
