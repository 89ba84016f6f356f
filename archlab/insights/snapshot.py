"""A run read once: its configuration, every experiment, its LLM spend and who drives it.

Every page of a run and the report start from one snapshot, so they agree with each other.
A snapshot is immutable; `fingerprint` says cheaply whether the archive changed since one was
taken (a reader's cache key and the web pages' "has anything changed?" poll).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from agents.config import RunConfig
from archlab.rundir import CONFIG_FILE, load_run_config, open_for_reading
from archlab.runlock import driver_of
from knowledge.archive import ARCHIVE_FILE, Spend
from knowledge.records import Event, Experiment, LLMCall


@dataclass(frozen=True)
class RunSnapshot:
    run_dir: Path
    config: RunConfig
    experiments: tuple[Experiment, ...]   # creation order
    spend: Spend
    driver: str                           # who drives the run now ("" when nobody does)
    taken_at: float
    by_id: dict[str, Experiment] = field(repr=False, compare=False, default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name or self.run_dir.name

    @property
    def proposals(self) -> list[Experiment]:
        return [e for e in self.experiments if e.proposer != "reference"]

    @property
    def references(self) -> list[Experiment]:
        return [e for e in self.experiments if e.proposer == "reference"]

    @property
    def baseline(self) -> Experiment | None:
        """The task's baseline: the driver seeds and evaluates it first, so it is the first reference."""
        references = self.references
        return references[0] if references else None

    @property
    def started_at(self) -> float:
        return min((e.created_at for e in self.experiments), default=self.taken_at)


def fingerprint(run_dir: Path) -> str:
    """Changes whenever the run's archive or configuration is written (SQLite's WAL file grows
    on every commit); cheap enough to ask every few seconds."""
    parts = []
    for name in (CONFIG_FILE, ARCHIVE_FILE, ARCHIVE_FILE + "-wal"):
        try:
            stat = (run_dir / name).stat()
            parts.append(f"{stat.st_mtime_ns:x}.{stat.st_size:x}")
        except OSError:
            parts.append("-")
    return "-".join(parts)


def load_snapshot(run_dir: Path) -> RunSnapshot:
    """Read a run (its archive opened read-only). Raises archlab's UsageError when the run has no
    archive yet or one this archlab cannot read; the message says what to do."""
    config = load_run_config(run_dir)
    name = config.name or run_dir.name
    with open_for_reading(run_dir) as archive:
        experiments = tuple(archive.experiments(run=name))
        spend = archive.spend(name)
    holder = driver_of(run_dir)
    return RunSnapshot(run_dir=run_dir, config=config, experiments=experiments, spend=spend,
                       driver=holder.describe() if holder else "", taken_at=time.time(),
                       by_id={e.id: e for e in experiments})


def load_history(snapshot: RunSnapshot, exp_id: str) -> tuple[list[LLMCall], list[Event]]:
    """An experiment's LLM calls and events, oldest first (read-only)."""
    with open_for_reading(snapshot.run_dir) as archive:
        return archive.llm_calls(experiment_id=exp_id, run=snapshot.name), archive.events(experiment_id=exp_id,
                                                                                           run=snapshot.name)
