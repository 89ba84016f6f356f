"""What a Ray cluster offers archlab: its live nodes, their CPUs and GPUs, and whether the
evaluator imports on each (a node without archlab fails every evaluation placed on it).

Each node is asked by a task pinned to it that needs no CPU, so a busy cluster still answers.
The question is a nested function, which Ray ships by value: it runs on a node that cannot
import this module, and says so instead of failing to arrive.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

PROBE_TIMEOUT_S = 60.0


@dataclass
class NodeReport:
    node_id: str
    address: str
    head: bool
    cpus: float
    gpus: float
    memory_gb: float
    python: str = ""
    torch: str = ""
    archlab: str = ""   # where archlab imports from on the node; "" when it does not
    problem: str = ""   # why archlab does not import there, or why the node did not answer


@dataclass
class ClusterReport:
    address: str
    nodes: list[NodeReport] = field(default_factory=list)

    @property
    def cpus(self) -> float:
        return sum(node.cpus for node in self.nodes)

    @property
    def gpus(self) -> float:
        return sum(node.gpus for node in self.nodes)

    def to_dict(self) -> dict:
        return {"address": self.address, "cpus": self.cpus, "gpus": self.gpus,
                "nodes": [asdict(node) for node in self.nodes]}


def cluster_report(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> ClusterReport:
    """Connect to the cluster at `address` ('auto', 'HOST:PORT' or 'ray://HOST:PORT'), ask every live node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        report = ClusterReport(address)
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            report.nodes.append(NodeReport(
                node_id=node["NodeID"], address=node.get("NodeManagerAddress", ""),
                head="node:__internal_head__" in resources, cpus=resources.get("CPU", 0.0),
                gpus=resources.get("GPU", 0.0), memory_gb=round(resources.get("memory", 0.0) / 2**30, 1)))
        probe = ray.remote(num_cpus=0, max_retries=0)(_make_probe())
        pending = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)).remote(): n
                   for n in report.nodes}
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
        for ref, node in pending.items():
            if ref not in ready:
                node.problem = f"no answer in {timeout_s:.0f} s (is the node busy starting workers, or gone?)"
                continue
            try:
                node.python, node.torch, node.archlab, node.problem = ray.get(ref)
            except ray.exceptions.TaskUnschedulableError:
                node.problem = "gone: the node left the cluster after it was listed"
            except Exception as error:  # the node could not even run the question
                node.problem = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
        return report
    finally:
        ray.shutdown()


def _make_probe():
    def probe() -> tuple[str, str, str, str]:
        """On the node: Python, torch, and whether the evaluator (archlab's worker side) imports."""
        import importlib
        import sys

        python = sys.version.split()[0]
        try:
            torch = importlib.import_module("torch").__version__
        except Exception as error:
            torch = f"missing ({type(error).__name__})"
        try:
            importlib.import_module("evaluator.evaluate")
            where = importlib.import_module("archlab").__file__ or "?"
            return python, torch, where.rsplit("/archlab/", 1)[0], ""
        except Exception as error:
            return python, torch, "", (f"archlab does not import here: {type(error).__name__}: {error}; install "
                                       "it on the node (pip install archlab) or ship it with a runtime_env")
    return probe
