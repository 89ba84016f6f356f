"""SEARCH/REPLACE edits of a candidate file, as the coder may answer them.

Each SEARCH text must occur exactly once in the file as it stands when that edit is applied.
Two near-misses real models produce are repaired when the repair is unambiguous: trailing
whitespace, and a block whose indentation is off by the same amount on every line (it is
re-indented, and so is its replacement). Anything else is refused with a message, written
for the model's corrective retry, that quotes what the file really holds there.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

QUOTE_LINES = 12          # lines of the file quoted in an error
CLOSEST_MIN_RATIO = 0.5   # below this, nothing in the file is called "close"


@dataclass(frozen=True)
class Edit:
    search: str
    replace: str


@dataclass(frozen=True)
class Applied:
    code: str
    notes: tuple[str, ...] = ()  # repairs made on the way, e.g. a block re-indented


class EditError(ValueError):
    """One or more edits could not be applied; the message says, for each, what the file holds."""


def apply_edits(code: str, edits: Sequence[Edit]) -> Applied:
    """Apply `edits` in order; every failing edit is reported, none is guessed."""
    if not edits:
        raise EditError("no edits given: answer the whole file, or at least one SEARCH/REPLACE block")
    problems: list[str] = []
    notes: list[str] = []
    for number, edit in enumerate(edits, start=1):
        label = f"SEARCH block {number} of {len(edits)} (first line `{_first_line(edit.search)}`)"
        try:
            code, note = _apply_one(code, edit)
        except EditError as error:
            problems.append(f"{label} {error}")
            continue
        if note:
            notes.append(f"SEARCH block {number}: {note}")
    if problems:
        raise EditError("\n".join(problems))
    return Applied(code, tuple(notes))


def _apply_one(code: str, edit: Edit) -> tuple[str, str]:
    if not edit.search.strip():
        raise EditError("is empty: copy the lines to replace from the file into it")
    count = code.count(edit.search)
    if count == 1:
        return code.replace(edit.search, edit.replace, 1), ""
    lines = code.splitlines(keepends=True)
    if count > 1:
        starts = _line_numbers_of(code, edit.search)
        raise EditError(f"matches {count} places (lines {_join(starts)} of the file): add neighbouring lines "
                        "so that it matches exactly one")
    wanted = [line.rstrip() for line in edit.search.splitlines()]
    while wanted and not wanted[-1]:
        wanted.pop()
    matches = _shifted_matches(lines, wanted)
    if len(matches) == 1:
        start, shift = matches[0]
        replacement = _reindent(edit.replace, shift)
        end = start + len(wanted)
        ending = "\n" if lines[end - 1].endswith("\n") and not replacement.endswith("\n") and replacement else ""
        new_code = "".join(lines[:start]) + replacement + ending + "".join(lines[end:])
        where = _span(start, end)
        if shift == 0:
            return new_code, f"matched {where} once trailing whitespace was ignored"
        return new_code, f"matched {where} with every line {_spaces(shift)}; re-indented its replacement the same way"
    if len(matches) > 1:
        raise EditError(f"does not occur as written; with its indentation shifted it matches {len(matches)} places "
                        f"(lines {_join([m[0] + 1 for m in matches])}): copy it verbatim, with neighbouring lines")
    raise EditError(_why_missing(lines, wanted))


def _shifted_matches(lines: list[str], wanted: list[str]) -> list[tuple[int, int]]:
    """(start index, indentation shift) of each window equal to `wanted` up to a uniform shift."""
    if not wanted:
        return []
    relative, base = _relative(wanted)
    found = []
    for start in range(len(lines) - len(wanted) + 1):
        window = [line.rstrip() for line in lines[start:start + len(wanted)]]
        if window[0].strip() != wanted[0].strip():
            continue
        window_relative, window_base = _relative(window)
        if window_relative == relative:
            found.append((start, window_base - base))
    return found


def _relative(lines: list[str]) -> tuple[list[str], int]:
    """Lines with their common indentation removed, and that indentation's width."""
    indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    base = min(indents) if indents else 0
    return [line[base:] if line.strip() else "" for line in lines], base


def _reindent(text: str, shift: int) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        if not line.strip():
            out.append(line)
        elif shift > 0:
            out.append(" " * shift + line)
        else:
            indent = len(line) - len(line.lstrip(" "))
            out.append(line[min(indent, -shift):])
    return "".join(out)


def _why_missing(lines: list[str], wanted: list[str]) -> str:
    squeezed = [line.strip() for line in wanted if line.strip()]
    for start in range(len(lines)):
        window = [line.strip() for line in lines[start:] if line.strip()][:len(squeezed)]
        if window == squeezed and lines[start].strip() == squeezed[0]:
            end = _end_of_squeezed(lines, start, len(squeezed))
            return ("matches the file only if whitespace is ignored (and not by one indentation shift); "
                    f"the file has, at {_span(start, end)}:\n{_quote(lines, start, end)}\n"
                    "Copy indentation and line breaks exactly.")
    start, ratio = _closest(lines, wanted)
    if ratio < CLOSEST_MIN_RATIO:
        return "does not occur in the file, and nothing in the file is close to it: copy the lines to replace verbatim"
    end = min(len(lines), start + len(wanted))
    return (f"does not occur in the file. The closest is {_span(start, end)}:\n{_quote(lines, start, end)}\n"
            "Copy the lines to replace verbatim from the file as given (edits apply to it, not to an earlier answer).")


def _end_of_squeezed(lines: list[str], start: int, count: int) -> int:
    seen = 0
    for index in range(start, len(lines)):
        if lines[index].strip():
            seen += 1
            if seen == count:
                return index + 1
    return len(lines)


def _closest(lines: list[str], wanted: list[str]) -> tuple[int, float]:
    target = "\n".join(wanted)
    best, best_ratio = 0, 0.0
    for start in range(max(1, len(lines) - len(wanted) + 1)):
        window = "\n".join(line.rstrip() for line in lines[start:start + len(wanted)])
        matcher = difflib.SequenceMatcher(None, window, target, autojunk=False)
        if matcher.quick_ratio() > best_ratio and matcher.ratio() > best_ratio:
            best, best_ratio = start, matcher.ratio()
    return best, best_ratio


def _quote(lines: list[str], start: int, end: int) -> str:
    shown = lines[start:min(end, start + QUOTE_LINES)]
    text = "\n".join(f"{start + 1 + i:5d} | {line.rstrip()}" for i, line in enumerate(shown))
    return text + (f"\n      | ... ({end - start - QUOTE_LINES} more lines)" if end - start > QUOTE_LINES else "")


def _span(start: int, end: int) -> str:
    """Lines start+1..end (0-based start, exclusive end) in words."""
    return f"line {end}" if end - start == 1 else f"lines {start + 1}-{end}"


def _line_numbers_of(code: str, search: str) -> list[int]:
    found, index = [], code.find(search)
    while index != -1:
        found.append(code.count("\n", 0, index) + 1)
        index = code.find(search, index + 1)
    return found


def _spaces(shift: int) -> str:
    return f"indented {shift} spaces deeper in the file" if shift > 0 else f"indented {-shift} spaces less deep in the file"


def _join(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:-1]) + (" and " if len(numbers) > 1 else "") + str(numbers[-1])


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""
