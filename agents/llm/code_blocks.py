"""The coder's answer in plain text: one fenced ```python block holding the whole file, or
SEARCH/REPLACE blocks against the file it was given (the convention of Aider and OpenEvolve).

Parsing is strict where guessing could train the wrong file, and tolerant of what does not
change the meaning: prose around the block, fences around edit blocks, a missing closing
fence on a reply that ended normally, and fragments (usage examples) beside the one block
that is a whole file. Every refusal says what was found and where, for the corrective retry.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from agents.llm.edits import Edit

SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)[^`]*$")
PYTHON_TAGS = frozenset({"", "python", "py", "python3"})


@dataclass(frozen=True)
class CodeAnswer:
    mode: Literal["full", "edit"]
    code: str = ""
    edits: tuple[Edit, ...] = ()
    notes: tuple[str, ...] = ()  # what was tolerated on the way, recorded with the call


class CodeFormatError(ValueError):
    """No usable code in the answer; the message tells the model what to send instead."""


class TruncatedAnswer(CodeFormatError):
    """The reply hit the output token limit inside the code."""


@dataclass(frozen=True)
class _Block:
    tag: str
    first: int   # 1-based answer line of the opening fence
    last: int    # of the closing fence (or the answer's last line)
    body: str
    closed: bool


def parse_code_answer(text: str, truncated: bool = False) -> CodeAnswer:
    """The file or the edits in a coder's answer. `truncated`: the reply ended at the token limit."""
    lines = text.splitlines()
    if any(SEARCH.match(line) for line in lines):
        return _edits(lines, truncated)
    return _full_file(text, lines, truncated)


def _edits(lines: list[str], truncated: bool) -> CodeAnswer:
    edits: list[Edit] = []
    used: set[int] = set()
    index = 0
    while index < len(lines):
        if not SEARCH.match(lines[index]):
            index += 1
            continue
        start = index
        divider = _next(lines, index + 1, DIVIDER, stop=SEARCH)
        end = _next(lines, divider + 1, REPLACE, stop=SEARCH) if divider is not None else None
        number = len(edits) + 1
        if divider is None or end is None:
            missing = "its ======= divider" if divider is None else "its >>>>>>> REPLACE line"
            if truncated:
                raise TruncatedAnswer(f"the answer was cut off at the output token limit inside SEARCH/REPLACE block "
                                      f"{number} (answer line {start + 1}), before {missing}")
            raise CodeFormatError(f"SEARCH/REPLACE block {number} (answer line {start + 1}) lacks {missing}; each "
                                  "block is <<<<<<< SEARCH, the lines to find, =======, their new text, >>>>>>> REPLACE")
        edits.append(Edit(search=_joined(lines[start + 1:divider]), replace=_joined(lines[divider + 1:end])))
        used.update(range(start, end + 1))
        index = end + 1
    rest = "\n".join(line for i, line in enumerate(lines) if i not in used)
    whole = [b for b in _fenced_blocks(rest.splitlines()) if b.tag in PYTHON_TAGS and _defines_a_class(b.body)]
    if whole:
        raise CodeFormatError(f"the answer holds both {len(edits)} SEARCH/REPLACE block(s) and a whole file in a "
                              "```python block: send one or the other")
    return CodeAnswer("edit", edits=tuple(edits), notes=_prose_note(rest))


def _full_file(text: str, lines: list[str], truncated: bool) -> CodeAnswer:
    blocks = [b for b in _fenced_blocks(lines) if b.tag in PYTHON_TAGS and b.body.strip()]
    others = [b for b in _fenced_blocks(lines) if b.tag not in PYTHON_TAGS]
    if not blocks:
        if not others and _defines_a_class(text) and not truncated:
            return CodeAnswer("full", code=text.strip() + "\n", notes=("the file came without a fence",))
        tags = f" (found only ```{', ```'.join(sorted({b.tag for b in others}))} blocks)" if others else ""
        if truncated:
            raise TruncatedAnswer("the answer was cut off at the output token limit before any code block")
        raise CodeFormatError(f"the answer contains no ```python block{tags}: put the whole file in one ```python "
                              "block, or send SEARCH/REPLACE blocks")
    if len(blocks) == 1:
        block = blocks[0]
        if not block.closed:
            if truncated:
                raise TruncatedAnswer(f"the answer was cut off at the output token limit inside the ```python block "
                                      f"(answer lines {block.first}-{block.last}; the file ends mid-way at "
                                      f"`{_last_code_line(block.body)}`)")
            return CodeAnswer("full", code=block.body, notes=("the closing fence was missing",))
        return CodeAnswer("full", code=block.body, notes=_prose_note(text))
    whole = [b for b in blocks if b.closed and _defines_a_class(b.body)]
    spans = ", ".join(f"lines {b.first}-{b.last}" for b in blocks)
    if len(whole) == 1:
        kept = whole[0]
        return CodeAnswer("full", code=kept.body, notes=(
            f"{len(blocks)} python blocks ({spans}); kept the only one that is a whole file (lines {kept.first}-{kept.last})",))
    which = "none of them is a whole file" if not whole else f"{len(whole)} of them are whole files"
    raise CodeFormatError(f"the answer holds {len(blocks)} ```python blocks ({spans}) and {which}: send exactly "
                          "one block with the complete file, or SEARCH/REPLACE blocks")


def _fenced_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening.group(1)
        close = next((j for j in range(index + 1, len(lines))
                      if lines[j].strip().startswith(fence[0] * len(fence)) and not lines[j].strip().strip(fence[0])),
                     None)
        end = close if close is not None else len(lines)
        body = _joined(lines[index + 1:end])
        blocks.append(_Block(opening.group(2).lower(), index + 1, min(end + 1, len(lines)), body, close is not None))
        index = end + 1
    return blocks


def _defines_a_class(source: str) -> bool:
    """A whole candidate file parses and defines at least one class; a usage fragment does not."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.ClassDef) for node in tree.body)


def _next(lines: list[str], start: int, pattern: re.Pattern[str], stop: re.Pattern[str]) -> int | None:
    for index in range(start, len(lines)):
        if pattern.match(lines[index]):
            return index
        if stop.match(lines[index]):
            return None
    return None


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _prose_note(text: str) -> tuple[str, ...]:
    outside, inside = 0, False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside and line.strip():
            outside += 1
    return (f"{outside} line(s) of prose around the code ignored",) if outside else ()


def _last_code_line(body: str) -> str:
    for line in reversed(body.splitlines()):
        if line.strip():
            return line.strip()[:80]
    return ""
