"""The archive: one SQLite file per run directory, the source of truth of everything a run did.

Several threads (in-flight experiments) and several processes (the loop, the CLI, the web UI)
write at once, and a run may be killed at any instant. So: WAL mode, one connection per thread
and process, every write a short transaction, read-modify-write under BEGIN IMMEDIATE (the write
lock is taken before reading), and a busy timeout instead of failing on a locked database.
SQLite's journal makes a transaction all-or-nothing, so a SIGKILL leaves only whole rows.

Readers (`status`, `ls`, `show`) open it read-only (`readonly=True`): a `mode=ro` connection that
never migrates nor changes the journal mode, so a run directory on read-only storage can be read.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from knowledge import rows
from knowledge.records import Event, Experiment, ExperimentBrief, Insight, LLMCall, Stage
from knowledge.schema import check_readable, migrate

ARCHIVE_FILE = "archive.sqlite"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
BUSY_TIMEOUT_MS = 60_000
_IDS_PER_QUERY = 500  # bound parameters per IN (...) query, well under SQLite's limit


class ExperimentNotFoundError(KeyError):
    def __str__(self) -> str:
        return f"no experiment with id {self.args[0]!r} in the archive"


class DuplicateExperimentError(ValueError):
    """add_experiment on an id that exists; use save_experiment to overwrite on purpose."""


class Spend(NamedTuple):
    calls: int
    tokens: int
    usd: float


class Archive:
    """Typed access to a run's archive. Open with `Archive.open(path)`, ideally as a context manager.

    One instance may be shared by threads and survives a fork: each thread and process gets
    its own connection.
    """

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        self._immutable = False  # read-only storage with no WAL index to share: nobody can write it
        self._local = threading.local()
        self._connections: list[tuple[int, sqlite3.Connection]] = []  # (pid, connection)
        self._connections_lock = threading.Lock()
        self._closed = False
        if not readonly:
            migrate(self._connection(), str(path))
            return
        if not path.is_file():
            raise FileNotFoundError(f"no archive at {path}")
        try:
            check_readable(self._connection(), str(path))
        except sqlite3.OperationalError:
            # A WAL database on read-only storage whose -shm file is gone cannot be opened
            # shared; nothing can write there, so reading it as immutable is exact.
            self.close()
            self._closed, self._immutable, self._local = False, True, threading.local()
            check_readable(self._connection(), str(path))

    @classmethod
    def open(cls, path: str | os.PathLike[str], readonly: bool = False) -> Archive:
        """`path` is a run directory (holding `archive.sqlite`) or a `.sqlite` file in one.
        `readonly`: never write, migrate or change the journal mode (the file must exist)."""
        target = Path(path)
        if target.is_dir():
            target = target / ARCHIVE_FILE
        elif target.suffix not in SQLITE_SUFFIXES:
            raise FileNotFoundError(f"cannot open an archive at {target}: not a directory; create the run "
                                    f"directory first, or name the file itself ({', '.join(SQLITE_SUFFIXES)})")
        if not target.parent.is_dir():
            raise FileNotFoundError(f"cannot open an archive at {target}: {target.parent} is not a directory")
        return cls(target, readonly=readonly)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this process opened; the archive cannot be used afterwards."""
        self._closed = True
        with self._connections_lock:
            mine = [conn for pid, conn in self._connections if pid == os.getpid()]
            self._connections.clear()
        for conn in mine:
            conn.close()

    # -- connections and transactions ---------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"the archive {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        if self.readonly:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro" + ("&immutable=1" if self._immutable else "")
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if self.readonly:
            conn.execute("PRAGMA query_only=ON")
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            conn.execute("PRAGMA foreign_keys=ON")
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._connections_lock:
            self._connections.append((os.getpid(), conn))
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock from its first statement."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._connection().execute(sql, tuple(params)).fetchall()

    # -- experiments ---------------------------------------------------------------------------

    def next_experiment_id(self, run: str) -> str:
        """Reserve a fresh id ("e0001", ...) for `run`; unique even across processes.

        Reserved ids are never handed out twice, even if the caller never stores the experiment.
        """
        with self._write() as conn:
            while True:
                seq = conn.execute("INSERT INTO id_reservations (run, created_at) VALUES (?, ?)",
                                   (run, time.time())).lastrowid
                exp_id = f"e{seq:04d}"
                if not conn.execute("SELECT 1 FROM experiments WHERE id=?", (exp_id,)).fetchone():
                    return exp_id

    def add_experiment(self, exp: Experiment) -> Experiment:
        """Insert a new experiment; returns the stored record (timestamps set by the archive)."""
        return self.add_experiments([exp])[0]

    def add_experiments(self, experiments: Iterable[Experiment]) -> list[Experiment]:
        """Insert several new experiments in one transaction (all or none)."""
        now = time.time()
        stored = [exp.model_copy(update={"created_at": now, "updated_at": now}) for exp in experiments]
        sql = rows.insert_sql("experiments", rows.EXPERIMENT_COLUMNS)
        try:
            with self._write() as conn:
                conn.executemany(sql, [rows.experiment_to_row(exp) for exp in stored])
        except sqlite3.IntegrityError as error:
            raise DuplicateExperimentError(
                f"an experiment with one of the ids {[e.id for e in stored][:5]} already exists "
                f"({error}); take a fresh id from next_experiment_id() or call save_experiment() "
                "to overwrite") from error
        return stored

    def save_experiment(self, exp: Experiment) -> Experiment:
        """Insert or overwrite the whole record; keeps the original `created_at`."""
        sql = rows.insert_sql("experiments", rows.EXPERIMENT_COLUMNS, upsert_key="id", keep=("created_at",))
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT created_at FROM experiments WHERE id=?", (exp.id,)).fetchone()
            stored = exp.model_copy(update={"created_at": row[0] if row else now, "updated_at": now})
            conn.execute(sql, rows.experiment_to_row(stored))
        return stored

    def update_experiment(self, exp_id: str, **fields: Any) -> Experiment:
        """Change some fields atomically (no lost update against a concurrent writer)."""
        unknown = sorted(set(fields) - set(rows.EXPERIMENT_FIELDS))
        if unknown:
            raise ValueError(f"unknown experiment field(s) {unknown}; known fields: {list(rows.EXPERIMENT_FIELDS)}")
        fixed = sorted(set(fields) & {"id", "created_at", "updated_at"})
        if fixed:
            raise ValueError(f"{fixed} cannot be updated: the id is fixed and timestamps are set by the archive")
        sql = rows.insert_sql("experiments", rows.EXPERIMENT_COLUMNS, upsert_key="id", keep=("created_at",))
        with self._write() as conn:
            current = self._get(conn, exp_id)
            data = current.model_dump()
            data.update(fields, updated_at=time.time())
            stored = Experiment.model_validate(data)
            conn.execute(sql, rows.experiment_to_row(stored))
        return stored

    def get_experiment(self, exp_id: str) -> Experiment:
        return self._get(self._connection(), exp_id)

    @staticmethod
    def _get(conn: sqlite3.Connection, exp_id: str) -> Experiment:
        row = conn.execute("SELECT * FROM experiments WHERE id=?", (exp_id,)).fetchone()
        if row is None:
            raise ExperimentNotFoundError(exp_id)
        return rows.experiment_from_row(row)

    def experiments(self, run: str | None = None, stage: Stage | str | None = None,
                    status: str | None = None) -> list[Experiment]:
        """Full records in creation order, optionally filtered."""
        where, params = _filters(run=run, stage=Stage(stage).value if stage else None, status=status)
        found = self._read(f"SELECT * FROM experiments{where} ORDER BY rowid", params)
        return [rows.experiment_from_row(row) for row in found]

    def experiments_changed(self, run: str, known: Mapping[str, float]) -> tuple[list[str], list[Experiment]]:
        """For a reader that keeps decoded experiments in memory: every id of `run` in creation
        order, and the full records of only those that are new or whose `updated_at` differs from
        `known` (id -> updated_at of the records it holds). Every write to an experiment sets its
        `updated_at`, so the rest are unchanged; the scan reads no JSON, and both reads see one
        state of the file (one read transaction), so nothing written in between is half seen."""
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            found = conn.execute("SELECT id, updated_at FROM experiments WHERE run=? ORDER BY rowid", (run,)).fetchall()
            stale = [exp_id for exp_id, updated_at in found if known.get(exp_id) != updated_at]
            changed: list[Experiment] = []
            for start in range(0, len(stale), _IDS_PER_QUERY):
                chunk = stale[start:start + _IDS_PER_QUERY]
                changed += [rows.experiment_from_row(row) for row in conn.execute(
                    f"SELECT * FROM experiments WHERE id IN ({', '.join('?' * len(chunk))})", chunk)]
        finally:
            conn.execute("COMMIT")
        return [exp_id for exp_id, _ in found], changed

    def briefs(self, run: str | None = None) -> list[ExperimentBrief]:
        """Light records for selection: no code, metrics or text (fast on 100k experiments).

        In insertion order, which is creation order (an upsert keeps a row's place)."""
        where, params = _filters(run=run)
        cursor = self._connection().execute(
            f"SELECT {', '.join(rows.BRIEF_COLUMNS)} FROM experiments{where} ORDER BY rowid", params)
        cursor.row_factory = None
        return rows.briefs_from_rows(cursor)

    def find_by_code_hash(self, code_hash: str) -> list[Experiment]:
        found = self._read("SELECT * FROM experiments WHERE code_hash=? ORDER BY rowid", (code_hash,))
        return [rows.experiment_from_row(row) for row in found]

    def find_by_genome(self, genome: dict[str, Any], run: str) -> list[Experiment]:
        """Experiments of `run` with this genome (compared as the canonical JSON it is stored as)."""
        found = self._read("SELECT * FROM experiments WHERE run=? AND genome=? ORDER BY rowid",
                           (run, rows.canonical_json(genome)))
        return [rows.experiment_from_row(row) for row in found]

    def find_by_structure_hash(self, structure_hash: str) -> list[Experiment]:
        found = self._read("SELECT * FROM experiments WHERE structure_hash=? ORDER BY rowid",
                           (structure_hash,))
        return [rows.experiment_from_row(row) for row in found]

    # -- LLM calls, events, insights ----------------------------------------------------------

    def record_llm_call(self, call: LLMCall) -> LLMCall:
        """Store a call and, in the same transaction, add its tokens and cost to its experiment.

        The experiment's `tokens` and `cost_usd` are thus maintained here: callers must not add
        a call's figures to them again.
        """
        stored = call.model_copy(update={"created_at": time.time()})
        with self._write() as conn:
            conn.execute(rows.insert_sql("llm_calls", rows.LLM_CALL_FIELDS), rows.llm_call_to_row(stored))
            if stored.experiment_id is not None:
                conn.execute(
                    "UPDATE experiments SET tokens = tokens + ?, cost_usd = cost_usd + ?, updated_at = ?"
                    " WHERE id = ?",
                    (stored.prompt_tokens + stored.completion_tokens, stored.cost_usd,
                     stored.created_at, stored.experiment_id))
        return stored

    def llm_calls(self, experiment_id: str | None = None, run: str | None = None) -> list[LLMCall]:
        where, params = _filters(experiment_id=experiment_id, run=run)
        return [rows.llm_call_from_row(r) for r in self._read(f"SELECT * FROM llm_calls{where} ORDER BY seq", params)]

    def spend(self, run: str) -> Spend:
        """What a run has spent on LLM calls so far: (calls, tokens, usd)."""
        calls, tokens, usd = self._read(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0)"
            " FROM llm_calls WHERE run=?", (run,))[0]
        return Spend(calls, tokens, usd)

    def log_event(self, event: Event) -> Event:
        stored = event.model_copy(update={"created_at": time.time()})
        with self._write() as conn:
            conn.execute(rows.insert_sql("events", rows.EVENT_FIELDS), rows.event_to_row(stored))
        return stored

    def events(self, run: str | None = None, experiment_id: str | None = None, kind: str | None = None,
               since: float | None = None, limit: int | None = None) -> list[Event]:
        """Events in the order they were logged; `since` keeps those logged after a timestamp,
        `limit` the most recent ones."""
        where, params = _filters(run=run, experiment_id=experiment_id, kind=kind)
        if since is not None:
            where += (" AND" if where else " WHERE") + " created_at > ?"
            params.append(since)
        sql = f"SELECT * FROM events{where} ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [rows.event_from_row(r) for r in reversed(self._read(sql, params))]

    def add_insight(self, insight: Insight) -> Insight:
        """Insert or replace by id: adding the same insight twice keeps one."""
        return self.add_insights([insight])[0]

    def add_insights(self, insights: Iterable[Insight]) -> list[Insight]:
        stored = list(insights)
        sql = rows.insert_sql("insights", rows.INSIGHT_FIELDS, upsert_key="id", keep=("created_at",))
        now = time.time()
        with self._write() as conn:
            conn.executemany(sql, [rows.insight_to_row(ins, now) for ins in stored])
        return stored

    def insights(self, source: str | None = None, run: str | None = None) -> list[Insight]:
        where, params = _filters(source=source, run=run)
        found = self._read(f"SELECT * FROM insights{where} ORDER BY rowid", params)
        return [rows.insight_from_row(row) for row in found]

    def delete_insights(self, ids: Iterable[str]) -> None:
        """Drop insights that no longer exist at their source (e.g. a removed cognition entry)."""
        with self._write() as conn:
            conn.executemany("DELETE FROM insights WHERE id=?", [(i,) for i in ids])

    def integrity_check(self) -> list[str]:
        """SQLite's own check; ["ok"] when the file is sound."""
        return [row[0] for row in self._read("PRAGMA integrity_check")]


def _filters(**equal: Any) -> tuple[str, list[Any]]:
    """A WHERE clause of column = value for every filter that is not None."""
    used = {name: value for name, value in equal.items() if value is not None}
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{name}=?" for name in used), list(used.values())
