"""The SQLite engine's refusals and its lock handling, and the state columns, on real files."""

import sqlite3
import subprocess
import sys

import eventlet
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from common.contracts import JobState
from common.db import States, UnsupportedDatabase, make_engine, refuse_network_filesystem

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /mnt/shared nfs4 rw,relatime 0 0
//nas/share /mnt/nas cifs rw 0 0
tmpfs /mnt/shared/local tmpfs rw 0 0
"""

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "fstype"),
    [("sqlite:////mnt/shared/app/service.sqlite3", "nfs4"), ("sqlite:////mnt/nas/service.sqlite3", "cifs")],
)
def test_a_sqlite_file_on_a_network_filesystem_is_refused_with_the_reason(url, fstype):
    with pytest.raises(UnsupportedDatabase, match=f"on a {fstype} network filesystem"):
        refuse_network_filesystem(url, MOUNTS)


@pytest.mark.parametrize(
    "url",
    ["sqlite:////srv/service.sqlite3", "sqlite:////mnt/shared/local/service.sqlite3", "sqlite://"],
)
def test_a_local_file_or_memory_is_accepted(url):
    refuse_network_filesystem(url, MOUNTS)


def test_sqlite_runs_in_wal_mode_and_waits_for_another_processs_write_lock(tmp_path):
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); c.execute('INSERT INTO t VALUES (1)'); print('held', flush=True); "
            "sys.stdin.readline(); c.execute('COMMIT')",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout.readline() == b"held\n"
    # Another greenthread releases the holder: that happens only if the wait below yields (a C busy
    # wait would block this whole process until "database is locked").
    eventlet.spawn_after(0.5, holder.communicate, b"go\n")
    with engine.begin() as connection:  # waits (green sleeps) until the holder commits
        connection.execute(text("INSERT INTO t VALUES (2)"))
        rows = connection.execute(text("SELECT n FROM t ORDER BY n")).scalars().all()

    assert mode == "wal"
    assert rows == [1, 2]
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (2,)


def jobs_table(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'states.sqlite3'}")
    table = Table(
        "jobs", MetaData(), Column("id", Integer, primary_key=True), Column("state", States(JobState))
    )
    table.metadata.create_all(engine)
    return engine, table


def test_a_state_is_stored_as_its_string_and_read_back_as_the_enum(tmp_path):
    engine, table = jobs_table(tmp_path)

    with engine.begin() as connection:
        connection.execute(insert(table).values(id=1, state=JobState.UPLOADED))
        connection.execute(text("INSERT INTO jobs (id, state) VALUES (2, 'notified')"))  # a row from before
        stored = connection.execute(text("SELECT state FROM jobs ORDER BY id")).scalars().all()
        read = connection.execute(select(table.c.state).order_by(table.c.id)).scalars().all()
    engine.dispose()

    assert stored == ["uploaded", "notified"]
    assert read == [JobState.UPLOADED, JobState.NOTIFIED]
    assert all(type(state) is JobState for state in read)


def test_a_string_that_is_no_state_is_refused_before_it_is_stored(tmp_path):
    engine, table = jobs_table(tmp_path)

    with pytest.raises(StatementError, match="'done' is not a valid JobState"), engine.begin() as connection:
        connection.execute(insert(table).values(id=1, state="done"))
    with engine.begin() as connection:
        count = connection.execute(text("SELECT count(*) FROM jobs")).scalar()
    engine.dispose()

    assert count == 0
