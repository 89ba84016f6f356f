"""A real multi-node Ray on this host for the cluster tests: a head (no CPU, so evaluations go to
the workers) and worker nodes of one CPU each, every node its own raylet and object store
process. The test process stays outside the cluster, so that it may kill any node (the last
test, which makes it a driver, kills the head)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.loop_support import ROOT

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 * 2**20, "include_dashboard": False}
EVALUATOR_WORKER = b"evaluator.worker"


class LocalCluster:
    def __init__(self, workers: int = 2):
        from ray.cluster_utils import Cluster

        head = {**NODE_ARGS, "num_cpus": 0}
        self.cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
        self.workers: list = []
        for _ in range(workers):
            self.add_worker()

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_worker(self):
        """A node more (Ray's Cluster starts it from the main thread only); back once it has registered."""
        node = self.cluster.add_node(**NODE_ARGS)
        self.workers.append(node)
        return node

    def kill(self, node) -> None:
        """No goodbye: the raylet and everything under it are SIGKILLed, as when a machine vanishes."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def kill_head(self) -> None:
        """The GCS and the head's raylet go at once; the worker nodes stay, cut off."""
        self.cluster.head_node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
        self.cluster.head_node = None  # (remove_node refuses the head a driver in this process is attached to)

    def node_evaluating(self, min_seconds: float = 1.0):
        """The worker node one of whose Ray workers has run an evaluation's sandbox for `min_seconds`."""
        raylets = {node.all_processes["raylet"][0].process.pid: node for node in list(self.workers)}
        for pid, started in _evaluations():
            if time.monotonic() - started < min_seconds:
                continue
            for ancestor in _ancestors(pid):
                if ancestor in raylets:
                    return raylets[ancestor]
        return None

    def shutdown(self) -> None:
        self.cluster.shutdown()


def _evaluations() -> list[tuple[int, float]]:
    """(pid, start on the monotonic clock) of every evaluator worker process on this host."""
    ticks, now_boot = os.sysconf("SC_CLK_TCK"), time.clock_gettime(time.CLOCK_BOOTTIME)
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if EVALUATOR_WORKER not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        age = now_boot - int(fields[19]) / ticks
        found.append((int(entry.name), time.monotonic() - age))
    return found


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        chain.append(pid)
    return chain


def start_archlab(*args: str, cwd: Path) -> subprocess.Popen:
    """The real command line in a fresh process, as a user would run it (stdout and stderr together)."""
    return subprocess.Popen([sys.executable, "-m", "archlab.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
