"""The archive's tables and their forward migrations.

A run directory may outlive several versions of archlab, so an archive file is never rebuilt
from scratch: each migration takes the database one version forward, in order, inside one
transaction, and `schema_version` records how far it got. Add a migration at the end of
`MIGRATIONS`; never edit one that has shipped.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from knowledge.descriptors import descriptors_from_metrics, selection_weight

V1_TABLES = """
CREATE TABLE experiments (
    id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    proposer TEXT NOT NULL DEFAULT '',
    motivation TEXT NOT NULL DEFAULT '',
    plan TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    code_hash TEXT NOT NULL DEFAULT '',
    structure_hash TEXT NOT NULL DEFAULT '',
    parent_id TEXT,
    reference_ids TEXT NOT NULL DEFAULT '[]',
    stage TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    fitness TEXT,
    analysis TEXT NOT NULL DEFAULT '{}',
    genome TEXT,
    timings TEXT NOT NULL DEFAULT '{}',
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX experiments_run ON experiments(run);
CREATE INDEX experiments_stage ON experiments(stage);
CREATE INDEX experiments_status ON experiments(status);
CREATE INDEX experiments_code_hash ON experiments(code_hash);
CREATE INDEX experiments_structure_hash ON experiments(structure_hash);
CREATE INDEX experiments_parent ON experiments(parent_id);

CREATE TABLE llm_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    experiment_id TEXT,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    response TEXT NOT NULL DEFAULT '',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    latency_s REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE INDEX llm_calls_run ON llm_calls(run);
CREATE INDEX llm_calls_experiment ON llm_calls(experiment_id);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    experiment_id TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX events_run ON events(run, seq);
CREATE INDEX events_experiment ON events(experiment_id);

CREATE TABLE insights (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    run TEXT NOT NULL DEFAULT '',
    experiment_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX insights_source ON insights(source);

CREATE TABLE id_reservations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


def _v1_tables(conn: sqlite3.Connection) -> None:
    for statement in V1_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v2_selection_columns(conn: sqlite3.Connection) -> None:
    """Fitness and behaviour descriptors as columns, so parent sampling reads no JSON."""
    for column in ("fitness_value REAL", "fitness_flagged INTEGER NOT NULL DEFAULT 0",
                   "log10_params REAL", "complexity_exponent REAL", "latency_ms REAL"):
        conn.execute(f"ALTER TABLE experiments ADD COLUMN {column}")
    rows = conn.execute("SELECT id, metrics, fitness FROM experiments").fetchall()
    for exp_id, metrics, fitness in rows:
        found = descriptors_from_metrics(json.loads(metrics))
        fit = json.loads(fitness) if fitness else None
        conn.execute(
            "UPDATE experiments SET fitness_value=?, fitness_flagged=?, log10_params=?,"
            " complexity_exponent=?, latency_ms=? WHERE id=?",
            (fit["value"] if fit else None, int(bool(fit and fit.get("flagged"))),
             found.log10_params, found.complexity_exponent, found.latency_ms, exp_id),
        )


def _v3_selection_weight(conn: sqlite3.Connection) -> None:
    """The judge's selection multiplier as a column (1 where no judge ran)."""
    conn.execute("ALTER TABLE experiments ADD COLUMN selection_weight REAL NOT NULL DEFAULT 1.0")
    for exp_id, analysis in conn.execute("SELECT id, analysis FROM experiments").fetchall():
        weight = selection_weight(json.loads(analysis))
        if weight != 1.0:
            conn.execute("UPDATE experiments SET selection_weight=? WHERE id=?", (weight, exp_id))


def _v4_provenance(conn: sqlite3.Connection) -> None:
    """What each evaluation ran with (torch, numpy, threads, data hashes), for replays; NULL before v4."""
    conn.execute("ALTER TABLE experiments ADD COLUMN provenance TEXT")


def _v5_llm_call_details(conn: sqlite3.Connection) -> None:
    """Per LLM call: tokens served from the provider's cache, and how the call was made (model
    choice, prompt trims, finish reason) as JSON; 0 and {} before v5."""
    conn.execute("ALTER TABLE llm_calls ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE llm_calls ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_v1_tables, _v2_selection_columns, _v3_selection_weight, _v4_provenance,
                                 _v5_llm_call_details)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    """The file was written by a newer archlab; opening it would risk corrupting it."""


class SchemaTooOldError(RuntimeError):
    """A read-only open found a file an older archlab wrote: it needs a migration, which writes."""


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return row[0] if row else 0


def check_readable(conn: sqlite3.Connection, path: str) -> None:
    """For a read-only open: the file must already be at this archlab's schema version."""
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(f"{path} has archive schema v{version}, this archlab knows up to "
                                f"v{SCHEMA_VERSION}: upgrade archlab to open it")
    if version < SCHEMA_VERSION:
        raise SchemaTooOldError(f"{path} has archive schema v{version}, older than this archlab's "
                                f"v{SCHEMA_VERSION}; reading it needs a one-time upgrade, which writes: "
                                "open it once where it is writable (e.g. `archlab status` on a copy)")


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the database up to SCHEMA_VERSION; returns the version it started at.

    Runs under BEGIN IMMEDIATE so two processes opening an old file at once migrate it once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = current_version(conn)
        if start > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{path} has archive schema v{start}, this archlab knows up to v{SCHEMA_VERSION}: "
                "upgrade archlab to open it"
            )
        if start == 0:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for version in range(start, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        conn.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return start
