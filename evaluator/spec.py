"""The job spec the orchestrator hands to a sandboxed worker, and where the worker answers.

The nonce is a secret between the orchestrator and the worker: the worker reads it from the
spec file and deletes that file before any candidate code runs, then writes its answer to
`result-<nonce>.json`. The orchestrator reads only that file, so whatever else candidate code
writes in the work directory is never taken for a result.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

SPEC_NAME = "spec.json"
CANDIDATE_NAME = "candidate.py"


@dataclass(frozen=True)
class WorkerSpec:
    task: str
    budget: str
    seed: int
    device: str                      # "cpu" or "cuda" (the sandbox shows the worker one GPU)
    nonce: str
    candidate: str = CANDIDATE_NAME  # file name inside the work directory
    complexity_exempt: bool = False  # set by the orchestrator for quadratic references only
    data_path: str | None = None
    threads: int = 1
    gpu_memory_fraction: float | None = None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> "WorkerSpec":
        data = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"spec {path} has unknown fields {sorted(unknown)}")
        return cls(**data)


def result_name(nonce: str) -> str:
    return f"result-{nonce}.json"


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one, never a half-written one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
