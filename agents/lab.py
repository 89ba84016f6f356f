"""The services one run's steps share: archive, vector store, team of agents, executor."""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agents.config import RunConfig
from agents.stopping import StopRequested
from agents.team import Team
from evaluator.remote import evaluate_on_node, node_out_dir
from evaluator.progress import LatestProgress
from evaluator.records import EvalResult
from knowledge.archive import Archive
from knowledge.records import Event, Experiment
from knowledge.vectors import VectorStore
from sandbox.executors import Executor, WorkCancelled

if TYPE_CHECKING:
    from agents.replay import ReplaySource


@dataclass
class Lab:
    config: RunConfig
    run: str
    run_dir: Path
    archive: Archive
    store: VectorStore
    team: Team
    executor: Executor  # places evaluations on device slots here, or on a Ray cluster
    stop: threading.Event = field(default_factory=threading.Event)
    # Experiments run in parallel threads: checking that a genome or a code hash is new and
    # recording it must be one step, or two experiments can both claim the same one.
    claims: threading.Lock = field(default_factory=threading.Lock)
    # The baseline's evaluation at a rung of the ladder is shared: the first climber runs it, others wait.
    ladder_lock: threading.Lock = field(default_factory=threading.Lock)
    replay: "ReplaySource | None" = None  # a replay: LLM answers and review decisions come from another run
    # The worker's last progress event of each experiment in training, for the live view ("step n/N").
    training: LatestProgress = field(default_factory=LatestProgress)

    def experiment_dir(self, experiment_id: str) -> Path:
        path = self.run_dir / "experiments" / experiment_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def update(self, experiment_id: str, **fields) -> Experiment:
        """Record new fields of an experiment, then re-index it so retrieval and novelty see them."""
        exp = self.archive.update_experiment(experiment_id, **fields)
        self.store.index_experiment(exp)
        return exp

    def log(self, experiment_id: str | None, kind: str, message: str, **data) -> None:
        self.archive.log_event(Event(run=self.run, kind=kind, message=message, experiment_id=experiment_id, data=data))

    def evaluate(self, target: Path | str, budget: str, seed: int, out_dir: Path,
                 experiment_id: str | None = None, task: str | None = None,
                 gate: tuple[str, float] | None = None, compile: bool | str | None = None) -> EvalResult:
        """One sandboxed evaluation wherever the executor places it; abandoned (StopRequested),
        not recorded, if the run stops meanwhile. `task`: one of a suite's tasks (default the run's);
        `gate`: (proxy, threshold) below which the candidate is not trained (agents/proxy_gate.py);
        `compile`: overrides the budget's torch.compile setting (None: the budget's).
        With `experiment_id`, its progress is kept in
        `training` while it runs (where the executor streams progress: not from a Ray node)."""
        self.check_stop()
        source = Path(target).read_text(encoding="utf-8") if Path(target).is_file() else None  # a node may lack the file
        work = functools.partial(evaluate_on_node, source, target, task=task or self.config.task, budget=budget, seed=seed, out_dir=out_dir,
                                 data=self.config.data, threads=self.config.threads_per_worker,
                                 **({"gate": gate} if gate else {}),
                                 **({"compile": compile} if compile is not None else {}))
        on_progress = functools.partial(self.training.note, experiment_id) if experiment_id else None
        try:
            notify = functools.partial(self._cluster_note, experiment_id, out_dir)
            return self.executor.submit(work, stop=self.stop, on_progress=on_progress, notify=notify).result()
        except WorkCancelled as cancelled:
            raise StopRequested("the run is stopping; the evaluation restarts on resume") from cancelled
        finally:
            if experiment_id:
                self.training.clear(experiment_id)

    def _cluster_note(self, experiment_id: str | None, out_dir: Path, kind: str, message: str, data: dict) -> None:
        """What a cluster did to an evaluation (a lost try, the node that ran it), as an event: files the
        evaluation left (eval.json, the worker's logs) are on that node, which the event names."""
        if kind == "placement":
            message = (f"{message}; its eval.json and logs stay there, in {out_dir} "
                       f"(or {node_out_dir(out_dir)} where that path cannot be made)")
        self.log(experiment_id, kind, message, out_dir=str(out_dir), **data)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested("the run is stopping")

    def baseline(self) -> Experiment | None:
        """The task's baseline reference, evaluated in this run on this hardware."""
        for exp in self.archive.experiments(run=self.run):
            if exp.proposer == "reference" and exp.name == self.team.task_baseline:
                return exp
        return None
