"""A run read once: its configuration, every experiment, its LLM spend and who drives it.

Every page of a run and the report start from one snapshot, so they agree with each other.
A snapshot is immutable; `fingerprint` says cheaply whether the archive changed since one was
taken (a reader's cache key and the web pages' "has anything changed?" poll), and `refresh`
makes the next snapshot from the last one by decoding only the experiments that changed (a
running run writes every few seconds; decoding 2,000 experiments takes a third of a second).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from agents.config import RunConfig
from archlab.rundir import CONFIG_FILE, load_run_config, open_for_reading
from archlab.runlock import driver_of
from knowledge.archive import ARCHIVE_FILE, Spend
from knowledge.records import Event, Experiment, LLMCall

T = TypeVar("T")


@dataclass(frozen=True)
class Memo:
    """What was derived from a snapshot, kept with it so that a reader works it out once, and
    after a refresh works out again only what the change touched.

    `content`: values derived from the whole run, valid while its configuration, experiments and
    spend are those of the snapshot (a refresh that finds them unchanged keeps them; any change
    starts afresh). `each` (per key, per experiment id): values derived from one experiment (its
    table row), valid while the experiment is the very record they were made from (a refresh
    reuses the record of an unchanged experiment). `kept`: values remade only when the inputs
    they were made from differ (the lineage's layout when a parent, an outcome or a fitness
    changed, not a token count). `each` and `kept` check their own validity, so the snapshots
    of one run share them."""

    content: dict[str, Any] = field(default_factory=dict)
    each: dict[str, dict[str, tuple[Experiment, Any]]] = field(default_factory=dict)
    kept: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def of_run(self, key: str, make: Callable[[], T]) -> T:
        if key not in self.content:
            self.content[key] = make()
        return self.content[key]

    def of_each(self, key: str, experiments: Iterable[Experiment], make: Callable[[Experiment], T]) -> tuple[T, ...]:
        """`make(exp)` of every experiment, made again only for records not seen before."""
        table = self.each.setdefault(key, {})
        values = []
        for exp in experiments:
            cached = table.get(exp.id)
            if cached is None or cached[0] is not exp:
                cached = table[exp.id] = (exp, make(exp))
            values.append(cached[1])
        return tuple(values)

    def of_inputs(self, key: str, inputs: Any, make: Callable[[], T]) -> T:
        """`make()`, remade only when `inputs` (what it reads, compared with ==) changed."""
        cached = self.kept.get(key)
        if cached is not None and cached[0] == inputs:
            return cached[1]
        value = make()
        self.kept[key] = (inputs, value)
        return value

    def carried(self) -> Memo:
        """The memo of new content: nothing derived from the content as a whole, the rest shared."""
        return Memo(each=self.each, kept=self.kept)


@dataclass(frozen=True)
class RunSnapshot:
    run_dir: Path
    config: RunConfig
    experiments: tuple[Experiment, ...]   # creation order
    spend: Spend
    driver: str                           # who drives the run now ("" when nobody does)
    taken_at: float
    by_id: dict[str, Experiment] = field(repr=False, compare=False, default_factory=dict)
    versions: dict[str, float] = field(repr=False, compare=False, default_factory=dict)  # id -> updated_at
    memo: Memo = field(repr=False, compare=False, default_factory=Memo)

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
        return next((e for e in self.experiments if e.proposer == "reference"), None)

    @property
    def started_at(self) -> float:
        first = self.memo.of_run("first_created", lambda: min((e.created_at for e in self.experiments), default=None))
        return self.taken_at if first is None else first


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
    return refresh(None, run_dir)


def refresh(previous: RunSnapshot | None, run_dir: Path) -> RunSnapshot:
    """The run as it is now, decoding only the experiments written since `previous` (a snapshot
    of the same run directory, or None to read everything); unchanged experiments are
    `previous`'s very records, and when nothing the pages derive from changed (a write of an
    event only) the new snapshot keeps `previous`'s memo. Raises UsageError as load_snapshot."""
    config = load_run_config(run_dir)
    name = config.name or run_dir.name
    if previous is not None and previous.name != name:
        previous = None
    with open_for_reading(run_dir) as archive:
        order, changed = archive.experiments_changed(name, previous.versions if previous is not None else {})
        spend = archive.spend(name)
    holder = driver_of(run_dir)
    driver, now = holder.describe() if holder else "", time.time()
    if previous is None:
        by_id, versions = {e.id: e for e in changed}, {e.id: e.updated_at for e in changed}
    elif not changed and len(order) == len(previous.experiments):  # the same records in the same order
        if previous.config == config and previous.spend == spend:
            return dataclasses.replace(previous, driver=driver, taken_at=now)
        return dataclasses.replace(previous, config=config, spend=spend, driver=driver, taken_at=now,
                                   memo=previous.memo.carried())
    else:
        by_id, versions = dict(previous.by_id), dict(previous.versions)
        by_id.update((e.id, e) for e in changed)
        versions.update((e.id, e.updated_at) for e in changed)
        if len(by_id) != len(order):  # experiments gone from the archive (none of archlab's writes does that)
            by_id, versions = {i: by_id[i] for i in order}, {i: versions[i] for i in order}
    return RunSnapshot(run_dir=run_dir, config=config, experiments=tuple([by_id[i] for i in order]), spend=spend,
                       driver=driver, taken_at=now, by_id=by_id, versions=versions,
                       memo=previous.memo.carried() if previous is not None else Memo())


def load_history(snapshot: RunSnapshot, exp_id: str) -> tuple[list[LLMCall], list[Event]]:
    """An experiment's LLM calls and events, oldest first (read-only)."""
    with open_for_reading(snapshot.run_dir) as archive:
        return archive.llm_calls(experiment_id=exp_id, run=snapshot.name), archive.events(experiment_id=exp_id,
                                                                                           run=snapshot.name)
