"""The job spec the orchestrator hands to a sandboxed worker, and where the worker answers.

The nonce is a secret between the orchestrator and the worker: the worker reads it from the
spec file and deletes that file before any candidate code runs, then writes its answer to
`result-<nonce>.json`, which it creates before candidate code loads and seals with an HMAC under
the nonce. The orchestrator reads only that file and checks the seal, so whatever else candidate
code writes, in the work directory or into the open file, is never taken for a result.
Progress, when asked for, goes to an inherited pipe (`progress_fd`), each event sealed under
`progress_key` (see `evaluator.progress`); it is only ever shown, never read into a result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path

SPEC_NAME = "spec.json"
SEAL_KEY = "seal"
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
    progress_fd: int | None = None   # the write end of the orchestrator's progress pipe, inherited
    progress_key: str = ""           # seals progress events; like the nonce, gone before candidate code runs
    compile: str | bool | None = None  # "auto", True or False overrides the budget's `compile`; None: the budget's
    gate_proxy: str = ""             # the zero-cost proxy that gates training (agents/proxy_gate.py); "": none
    gate_below: float | None = None  # a score below this stops the evaluation after the proxies (status skipped)

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


def nonce_of(result_file: Path) -> str:
    """The nonce a result file is named after (the orchestrator chose the name)."""
    return result_file.name[len("result-"):-len(".json")]


def seal(result: dict, nonce: str) -> str:
    """The result as JSON with an HMAC under the nonce: bytes candidate code wrote into the open
    result file (say with os.write on a guessed descriptor) cannot carry a valid seal."""
    body = json.dumps(result, sort_keys=True)
    return json.dumps({**result, SEAL_KEY: _mac(body, nonce)}, indent=2, sort_keys=True)


def unseal(text: str, nonce: str) -> dict:
    """The sealed result, or ValueError when the seal is missing or wrong."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get(SEAL_KEY), str):
        raise ValueError("it carries no seal")
    mac = data.pop(SEAL_KEY)
    if not hmac.compare_digest(mac, _mac(json.dumps(data, sort_keys=True), nonce)):
        raise ValueError("its seal does not match: it was not written by the worker")
    return data


def _mac(body: str, nonce: str) -> str:
    return hmac.new(nonce.encode(), body.encode(), hashlib.sha256).hexdigest()
