"""The services one run's steps share: archive, vector store, team of agents, device slots."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from agents.config import RunConfig
from agents.slots import DeviceSlots
from agents.stopping import StopRequested
from agents.team import Team
from knowledge.archive import Archive
from knowledge.records import Event, Experiment
from knowledge.vectors import VectorStore


@dataclass
class Lab:
    config: RunConfig
    run: str
    run_dir: Path
    archive: Archive
    store: VectorStore
    team: Team
    slots: DeviceSlots
    stop: threading.Event = field(default_factory=threading.Event)

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

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested("the run is stopping")

    def baseline(self) -> Experiment | None:
        """The task's baseline reference, evaluated in this run on this hardware."""
        for exp in self.archive.experiments(run=self.run):
            if exp.proposer == "reference" and exp.name == self.team.task_baseline:
                return exp
        return None
