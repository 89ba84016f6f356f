"""A run directory on read-only storage: the readers work, the archive's journal mode is left as
it is, and the commands that must write say so with exit 2 instead of a traceback."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.records import Event
from tests.cli_support import cli, make_run


def read_only(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        item.chmod(stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture()
def frozen_run(tmp_path) -> Path:
    run_dir = make_run(tmp_path / "runs")
    assert not (run_dir / "archive.sqlite-wal").exists()  # closed cleanly: no WAL index to share
    read_only(tmp_path / "runs")
    yield run_dir
    for item in [tmp_path / "runs", *(tmp_path / "runs").rglob("*")]:
        item.chmod(stat.S_IMODE(item.stat().st_mode) | stat.S_IWUSR)


def journal_mode(path: Path) -> str:
    with open(path, "rb") as db:
        header = db.read(20)
    return "wal" if header[18:20] == b"\x02\x02" else "rollback"


def test_readers_work_on_a_read_only_run_directory(frozen_run, tmp_path):
    before = journal_mode(frozen_run / "archive.sqlite")
    status = cli("status", str(frozen_run), "--json", cwd=tmp_path, unprivileged=True)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["best"]["id"] == "e0002" and report["driver"] is None
    listing = cli("ls", str(frozen_run), cwd=tmp_path, unprivileged=True)
    assert listing.returncode == 0 and "short_conv_gate" in listing.stdout, listing.stderr
    shown = cli("show", str(frozen_run), "e0002", cwd=tmp_path, unprivileged=True)
    assert shown.returncode == 0 and "a larger state recalls more" in shown.stdout, shown.stderr
    runs = cli("runs", "--runs-dir", str(frozen_run.parent), cwd=tmp_path, unprivileged=True)
    assert runs.returncode == 0 and "demo" in runs.stdout and "stopped" in runs.stdout, runs.stderr
    waiting = cli("review", str(frozen_run), cwd=tmp_path, unprivileged=True)
    assert waiting.returncode == 0 and "e0003 short_conv_gate" in waiting.stdout, waiting.stderr
    assert journal_mode(frozen_run / "archive.sqlite") == before == "wal"
    assert sorted(p.name for p in frozen_run.iterdir()) == ["archive.sqlite", "config.json"]  # nothing written


def test_commands_that_write_say_so(frozen_run, tmp_path):
    decided = cli("review", str(frozen_run), "e0003", "--approve", cwd=tmp_path, unprivileged=True)
    assert decided.returncode == 2, decided.stderr
    assert "is read-only" in decided.stderr and "status, ls and show work there" in decided.stderr
    resumed = cli("resume", str(frozen_run), cwd=tmp_path, unprivileged=True)
    assert resumed.returncode == 2, resumed.stderr
    assert f"{frozen_run} is not writable" in resumed.stderr and "must be writable to run or resume" in resumed.stderr
    for done in (decided, resumed):
        assert "Traceback" not in done.stderr


def test_a_read_only_open_reads_beside_a_writer_and_never_writes(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    with Archive.open(run_dir) as writer, Archive.open(run_dir, readonly=True) as reader:
        writer.log_event(Event(run="demo", kind="note", message="written while a reader is open"))
        assert [e.message for e in reader.events(kind="note")] == ["written while a reader is open"]
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
            reader.log_event(Event(run="demo", kind="note", message="refused"))
    with pytest.raises(FileNotFoundError, match="no archive at"):
        Archive.open(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()  # a reader never creates an archive


def test_status_says_when_a_run_has_no_archive_yet(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    os.remove(run_dir / "archive.sqlite")
    done = cli("status", str(run_dir), cwd=tmp_path)
    assert done.returncode == 2 and "has no archive yet" in done.stderr and f"archlab resume {run_dir}" in done.stderr
