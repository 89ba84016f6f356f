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
from evaluator.evaluate import evaluate
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
    replay: "ReplaySource | None" = None  # a replay: LLM answers and review decisions come from another run

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

    def evaluate(self, target: Path | str, budget: str, seed: int, out_dir: Path) -> EvalResult:
        """One sandboxed evaluation wherever the executor places it; abandoned (StopRequested),
        not recorded, if the run stops meanwhile."""
        self.check_stop()
        work = functools.partial(evaluate, target, task=self.config.task, budget=budget, seed=seed, out_dir=out_dir,
                                 data=self.config.data, threads=self.config.threads_per_worker)
        try:
            return self.executor.submit(work, stop=self.stop).result()
        except WorkCancelled as cancelled:
            raise StopRequested("the run is stopping; the evaluation restarts on resume") from cancelled

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested("the run is stopping")

    def baseline(self) -> Experiment | None:
        """The task's baseline reference, evaluated in this run on this hardware."""
        for exp in self.archive.experiments(run=self.run):
            if exp.proposer == "reference" and exp.name == self.team.task_baseline:
                return exp
        return None
