"""The parts of cluster support that need no cluster: an evaluation on a node that lacks the driver's
disk, and how `archlab doctor --ray` shows what a cluster offers."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from archlab.commands.doctor import WIDTH, render_cluster
from evaluator.records import EvalResult, Status
from evaluator.remote import evaluate_on_node, node_out_dir

CANDIDATES = Path(__file__).with_name("candidates")


def test_a_node_without_the_drivers_disk_evaluates_the_shipped_source_and_keeps_its_files_in_temp(tmp_path,
                                                                                                    monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the node's temporary directory
    source = (CANDIDATES / "screen_module_smuggling.py").read_text()  # refused by the screen: no sandbox needed
    out_dir = Path("/proc/archlab-driver-only/runs/r1/experiments/e0007/eval-seed0")  # cannot be made here
    result = evaluate_on_node(source, out_dir.parent / "candidate.py", out_dir=out_dir, task="mqar", budget="smoke")
    kept = node_out_dir(out_dir)
    assert kept == tmp_path / "archlab-evals" / "r1" / "experiments" / "e0007" / "eval-seed0"
    assert result.status is Status.INVALID and "line" in result.reason, result.reason
    assert (kept / "candidate.py").read_text() == source
    assert EvalResult.from_dict(json.loads((kept / "eval.json").read_text())).reason == result.reason


def test_a_node_with_the_drivers_disk_evaluates_the_file_in_place(tmp_path):
    path = tmp_path / "candidate.py"
    path.write_text((CANDIDATES / "screen_module_smuggling.py").read_text())
    result = evaluate_on_node(path.read_text(), path, out_dir=tmp_path / "eval-seed0", task="mqar", budget="smoke")
    assert result.status is Status.INVALID
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate.py", "eval-seed0"]


def test_doctor_shows_each_node_and_why_one_cannot_evaluate_within_80_columns():
    node = {"node_id": "ab" * 28, "address": "10.0.0.6", "head": False, "cpus": 32.0, "gpus": 4.0, "memory_gb": 480.0,
            "python": "3.11.9", "torch": "2.5.1", "archlab": "/opt/archlab", "problem": ""}
    broken = {**node, "address": "10.0.0.7", "archlab": "", "problem": "archlab does not import here: "
              "ModuleNotFoundError: No module named 'evaluator'; install it on the node (pip install archlab)"}
    lines = render_cluster({"address": "10.0.0.5:6379", "cpus": 64.0, "gpus": 8.0, "nodes": [node, broken]})
    text = "\n".join(lines)
    assert "2 nodes, 64 CPUs, 8 GPUs" in text
    assert "archlab imports (/opt/archlab), torch 2.5.1" in " ".join(text.split())
    assert "UNUSABLE: archlab does not import here" in " ".join(text.split())
    assert all(len(line) <= WIDTH for line in lines)
    unreachable = render_cluster({"address": "10.0.0.9:6379", "error": "cannot connect: ConnectionError: x", "nodes": []})
    assert unreachable[-1].strip() == "cannot connect: ConnectionError: x"
