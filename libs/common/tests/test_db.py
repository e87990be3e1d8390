"""The SQLite engine's refusals and its lock handling, on real files."""

import sqlite3
import subprocess
import sys

import eventlet
import pytest
from sqlalchemy import text

from common.db import UnsupportedDatabase, make_engine, refuse_network_filesystem

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
