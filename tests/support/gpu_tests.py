"""Test files that need CUDA: skipped (and marked slow) under pytest without it, and runnable as plain scripts on the
GPU machine, which has no pytest (`python tests/test_gpu_*.py`)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch


def cuda_marks(why: str) -> list:
    """The module's `pytestmark`: slow, and skipped without CUDA; nothing where pytest is not installed."""
    try:
        import pytest
    except ModuleNotFoundError:  # the GPU machine: run as a script
        return []
    return [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason=why)]


def run_as_script(test: Callable[[Path], None], why: str) -> None:
    """Run one `test(tmp_path)` the way pytest would, in a scratch folder; exits with `why` without CUDA."""
    if not torch.cuda.is_available():
        sys.exit(f"skipped: {why}")
    with tempfile.TemporaryDirectory() as scratch:
        test(Path(scratch))
    print(f"{test.__name__} passed")
