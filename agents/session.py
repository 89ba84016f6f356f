"""Opening a run: the archive, vector store, team, executor and the checkpointed graph."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from agents.config import RunConfig
from agents.graph import build_graph
from agents.lab import Lab
from agents.replay import REPLAY_FILE, ReplaySource
from agents.team_factory import make_team
from knowledge.archive import Archive
from knowledge.cognition import index_cognition_base
from knowledge.embeddings import make_embedder
from knowledge.records import Event
from knowledge.vectors import VectorStore
from sandbox.executors import Executor, LocalPool, Notify

CHECKPOINT_FILE = "checkpoints.sqlite"
KNOWLEDGE_HOME = "_knowledge"  # <runs>/_knowledge: notes added outside any run


def _bring_in_knowledge(config: RunConfig, archive: Archive, store: VectorStore) -> None:
    """The cognition base, the notes a user added with `archlab knowledge add`, and a repair of
    the index if a crash came between an archive write and its indexing (all idempotent)."""
    store.repair(archive)
    index_cognition_base(archive, store)
    home = config.runs_dir / KNOWLEDGE_HOME / "archive.sqlite"
    if home.is_file():
        with Archive.open(home) as notes:
            insights = notes.insights(source="user")
        archive.add_insights(insights)
        store.index_insights(insights)


@contextmanager
def open_session(config: RunConfig, run_dir: Path) -> Iterator[tuple[Lab, object]]:
    run = config.name or run_dir.name
    archive = Archive.open(run_dir / "archive.sqlite")
    connection = sqlite3.connect(run_dir / CHECKPOINT_FILE, check_same_thread=False)
    executor: Executor | None = None
    try:
        store = VectorStore(run_dir / "chroma", make_embedder(config.embedder))
        _bring_in_knowledge(config, archive, store)
        stop = threading.Event()
        replay = ReplaySource.open(run_dir) if (run_dir / REPLAY_FILE).is_file() else None
        team = make_team(config, archive, run, stop, replay)
        executor = make_executor(config, stop, lambda kind, message, data: archive.log_event(
            Event(run=run, kind=kind, message=message, data=data)))
        lab = Lab(config=config, run=run, run_dir=run_dir, archive=archive, store=store, team=team,
                  executor=executor, stop=stop, replay=replay)
        archive.log_event(Event(run=run, kind="session", message="session opened",
                                data={"executor": type(executor).__name__, "capacity": executor.capacity}))
        yield lab, build_graph(lab, SqliteSaver(connection))
    finally:
        if executor is not None:
            executor.shutdown()
        connection.close()
        archive.close()


def make_executor(config: RunConfig, stop: threading.Event | None = None, notify: Notify | None = None) -> Executor:
    """This machine's device slots, or a Ray cluster ("local": one started here) when `ray` is set.
    On Ray, `stop` is set if the cluster stays unreachable; `notify(kind, message, data)` hears why."""
    if config.ray is None:
        return LocalPool(config.device_slots, stagger=config.stagger_starts)
    from sandbox.executors import RayExecutor  # ray is optional: `pip install 'archlab[cluster]'`

    address = None if config.ray == "local" else config.ray
    return RayExecutor(config.ray_device_kind, capacity=config.workers, address=address, tries=config.ray_tries,
                       reconnect_s=config.ray_reconnect_s, stop=stop, notify=notify, gpu_sharing=config.ray_gpu_sharing)
