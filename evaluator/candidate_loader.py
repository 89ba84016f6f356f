"""Loading a candidate file and pointing at the line of it that failed.

Only the sandboxed worker calls `load_mixer_class`: the orchestrator never imports candidate
code. Reasons name the candidate's own line, since that is what the coder agent can fix.
"""
from __future__ import annotations

import importlib.util
import linecache
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

MODULE_NAME = "archlab_candidate"
CLASS_NAME = "Mixer"


class CandidateError(Exception):
    """Candidate code failed or broke the contract; `reason` is ready for a person or an LLM."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ContractError(CandidateError):
    """The candidate broke the contract in a way no check could pass (invalid, whenever it is noticed)."""


def is_out_of_memory(error: BaseException) -> bool:
    """Memory exhaustion is the budget's verdict (oom), not a bug in the candidate (invalid)."""
    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


@contextmanager
def blame_candidate(candidate: Path, doing: str) -> Iterator[None]:
    """Turn any failure inside the block into a CandidateError naming the candidate's line.

    Memory exhaustion passes through untouched, and so does the worker's own deadline (a
    BaseException), since neither is the candidate's bug to fix.
    """
    try:
        yield
    except CandidateError:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 - candidate code may raise anything, exit too
        if is_out_of_memory(error):
            raise
        raise CandidateError(describe_failure(error, candidate, doing)) from error


def candidate_line(error: BaseException, candidate: Path) -> str:
    """'line N: `source`' of the innermost traceback frame in the candidate file, or ''."""
    if isinstance(error, SyntaxError) and error.filename and Path(error.filename) == candidate:
        return f"line {error.lineno}: `{(error.text or '').strip()}`"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == candidate]
    if not frames:
        return ""
    frame = frames[-1]
    source = (frame.line or linecache.getline(str(candidate), frame.lineno)).strip()
    return f"line {frame.lineno}: `{source}`"


def describe_failure(error: BaseException, candidate: Path, doing: str) -> str:
    """e.g. 'forward raised RuntimeError at line 12: `x @ w`: mat1 and mat2 shapes cannot be multiplied'."""
    where = candidate_line(error, candidate)
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = f"{doing} raised {type(error).__name__}"
    if where:
        text += f" at {where}"
    return f"{text}: {message[:300]}" if message else text


def load_mixer_class(candidate: Path) -> type[nn.Module]:
    """Execute the candidate file as a module and return its `Mixer` class."""
    spec = importlib.util.spec_from_file_location(MODULE_NAME, candidate)
    if spec is None or spec.loader is None:
        raise CandidateError(f"cannot load {candidate.name} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # as an import would: @dataclass looks its module up there
    with blame_candidate(candidate, "importing the candidate"):
        spec.loader.exec_module(module)
    mixer = module.__dict__.get(CLASS_NAME)
    if not (isinstance(mixer, type) and issubclass(mixer, nn.Module)):
        raise CandidateError(f"the file must define `class {CLASS_NAME}(torch.nn.Module)`; "
                             f"found {type(mixer).__name__ if mixer is not None else 'no such name'}")
    return mixer
