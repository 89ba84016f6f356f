"""One evaluation on a node that may not share the driver's disk (a Ray cluster without shared storage).

The candidate's source travels with the work: where the candidate file is missing on the node (or
differs), it is written next to the evaluation's files. Where the driver's out directory cannot be
created on the node, the files go to `node_out_dir(out_dir)` under the node's temporary directory.
Either way the whole result comes back to the driver; only the files stay on the node.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from evaluator.evaluate import evaluate
from evaluator.records import EvalResult

NODE_FOLDER = "archlab-evals"


def node_out_dir(out_dir: Path) -> Path:
    """Where a node keeps an evaluation's files when it cannot use the driver's path: the path's last
    four parts (run, "experiments", experiment, seed folder) under the node's temporary directory."""
    return Path(tempfile.gettempdir()) / NODE_FOLDER / Path(*Path(out_dir).parts[-4:])


def evaluate_on_node(source: str | None, target: Path | str, *, out_dir: Path, **options: Any) -> EvalResult:
    """`evaluate(target, out_dir=out_dir, **options)`, with `source` the candidate file's text
    (None for a reference, which is evaluated by name)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError:  # the driver's run directory is not on this node, and its path cannot be made here
        out_dir = node_out_dir(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    if source is not None:
        path = Path(target)
        if not _holds(path, source):
            path = out_dir / path.name
            path.write_text(source, encoding="utf-8")
        target = path
    return evaluate(target, out_dir=out_dir, **options)


def _holds(path: Path, source: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == source
    except OSError:
        return False
