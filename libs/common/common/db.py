"""SQLAlchemy for Nameko services: one engine per service container, one session per worker.

A worker gets a `WorkerDatabase` (its `session` and `ping()`), as nameko-sqlalchemy injects a
wrapper rather than a bare session: the SQL lives here and in the services' domain modules, never
in a service class.

Commit inside the entrypoint (``with session.begin(): ...``), never in ``worker_result``:
nameko publishes an RPC reply *before* ``worker_result`` runs, so a caller could otherwise
read back a row that is not committed yet.
"""

import logging
import os
import ssl
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path

from nameko.extensions import DependencyProvider
from sqlalchemy import MetaData, String, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from common.settings import DatabaseSettings, settings_of

log = logging.getLogger(__name__)

SQLITE_LOCK_WAIT = 30  # seconds a transaction waits for another one's write lock before failing
# SQLite's locking needs one host's file locks and shared memory (WAL): these share files between hosts.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "glusterfs", "ceph", "afs"}


class States(TypeDecorator):
    """A StrEnum column stored as its value in a VARCHAR, read back as the enum.

    No database enum type: a new state needs no migration, and the stored strings are the ones
    the columns held before the enums."""

    impl = String
    cache_ok = True

    def __init__(self, states: type[StrEnum], length: int = 16):
        super().__init__(length)
        self.states = states

    def process_bind_param(self, value, dialect):
        return None if value is None else self.states(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.states(value)


class UnsupportedDatabase(RuntimeError):
    """The database URL names something this service cannot use safely."""


def make_engine(url: str, workers: int = 10) -> Engine:
    """`workers`: the service's max_workers. Each worker holds one connection while it runs
    (`WorkerDatabase`), so the pool has one per worker, and some to spare."""
    if url.startswith("sqlite"):
        return sqlite_engine(url, workers)
    url, connect_args = tls_of(url)
    # pre-ping: a connection the database dropped (a restart) is replaced at checkout, not failed on
    return create_engine(
        url, pool_pre_ping=True, pool_size=workers, max_overflow=10, connect_args=connect_args
    )


# libpq's `sslmode` names, in DATABASE_URL, as pg8000's `ssl_context`. Left out, pg8000 tries TLS
# without verifying the server (a context made per connection) and falls back to plain: `prefer`.
SSLMODES = ("disable", "prefer", "require", "verify-full")


def tls_of(url: str) -> tuple[URL, dict]:
    """The URL without `sslmode` (pg8000 takes no such argument), and the driver's TLS arguments.

    disable: plain (a database on loopback or a private link of your own);
    require: encrypted, the server not verified; verify-full: the system's CAs, or `sslrootcert`'s
    file, must vouch for the server's certificate and host name. One context per engine.
    """
    parsed = make_url(url)
    mode, root = parsed.query.get("sslmode"), parsed.query.get("sslrootcert")
    parsed = parsed.difference_update_query(["sslmode", "sslrootcert"])
    if mode is None or mode == "prefer":
        return parsed, {}
    if mode not in SSLMODES or parsed.get_driver_name() != "pg8000":
        raise UnsupportedDatabase(
            f"DATABASE_URL: sslmode={mode} for {parsed.drivername}: "
            f"use postgresql+pg8000:// with sslmode one of {', '.join(SSLMODES)}"
        )
    if mode == "disable":
        return parsed, {"ssl_context": False}
    context = ssl.create_default_context(cafile=root)
    if mode == "require":
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return parsed, {"ssl_context": context}


def sqlite_engine(url: str, workers: int = 10) -> Engine:
    """SQLite for many greenthreads and several processes on one file.

    Under eventlet SQLite's own busy wait (`timeout`) is a C call that freezes the whole process,
    other workers, heartbeats and all, while another connection writes. So: no busy wait at all
    (`timeout=0`); every transaction starts with `BEGIN IMMEDIATE` (takes the write lock first, so
    two transactions never both read and then deadlock on upgrading to write), retried with green
    sleeps while another connection holds it; WAL so that the file's readers and the one writer do
    not block each other. Transactions stay short (no network call inside), so the wait is short.
    """
    engine = create_engine(
        url,
        # Greenthreads all run on one OS thread, but monkey-patching makes each look like its own.
        # isolation_level None: the driver's own BEGIN (deferred) is replaced by `begin` below.
        connect_args={"check_same_thread": False, "timeout": 0, "isolation_level": None},
        pool_size=workers,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        with_lock_retries(lambda: dbapi_connection.execute("PRAGMA journal_mode=WAL"))
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        with_lock_retries(lambda: connection.exec_driver_sql("BEGIN IMMEDIATE"))

    return engine


def is_locked(error: Exception) -> bool:
    return "database is locked" in str(error) or "database is busy" in str(error)


def with_lock_retries(statement, wait: float = SQLITE_LOCK_WAIT):
    """Runs `statement` until SQLite stops answering "database is locked", sleeping greenly between tries."""
    import sqlite3

    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        try:
            return statement()
        except (OperationalError, sqlite3.OperationalError) as error:
            if not is_locked(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)  # monkey-patched: the other greenthreads run meanwhile
        pause = min(pause * 2, 0.05)


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """The type of the filesystem `path` is on, from /proc/mounts (None where there is none)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    path = path.resolve()
    best, best_type = None, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = Path(fields[1].replace("\\040", " "))
        if (path == mount_point or mount_point in path.parents) and (
            best is None or len(mount_point.parts) > len(best.parts)
        ):
            best, best_type = mount_point, fields[2]
    return best_type


def refuse_network_filesystem(url: str, mounts: str | None = None) -> None:
    """SQLite on a filesystem shared between hosts corrupts or locks up: say so at start instead."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    fstype = filesystem_type(Path(database).absolute().parent, mounts)
    if fstype in NETWORK_FILESYSTEMS:
        raise UnsupportedDatabase(
            f"DATABASE_URL {url}: the SQLite file is on a {fstype} network filesystem; SQLite's "
            "locks and WAL work only between processes of one host. Use a local disk, or PostgreSQL."
        )


def insert_if_absent(session: Session, model, **values) -> bool:
    """INSERT the row unless one with the same key exists; True when it was inserted.

    One statement (``INSERT ... ON CONFLICT DO NOTHING``, PostgreSQL and SQLite) in the session's
    transaction: no savepoint around an insert that may fail, and no IntegrityError to catch.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # no portable ON CONFLICT: a savepoint, so a duplicate leaves the transaction usable
        from sqlalchemy import insert
        from sqlalchemy.exc import IntegrityError

        try:
            with session.begin_nested():
                session.execute(insert(model).values(**values))
        except IntegrityError:
            return False
        return True
    return session.execute(insert(model).values(**values).on_conflict_do_nothing()).rowcount == 1


class WorkerDatabase:
    """What a worker gets from `Database`: its own session, and a liveness check.

    The session is made when the worker first uses it: a worker that needs no database (an event
    without an id at the receiver) costs no session. It runs on one connection, checked out of the
    pool (and pinged) once for all the worker's transactions: a session of its own would check out,
    ping and return a connection per transaction (the time_consuming worker commits three times)."""

    def __init__(self, engine: Engine, make_session: sessionmaker):
        self.engine = engine
        self.make_session = make_session
        self.connection: Connection | None = None
        self.opened: Session | None = None

    @property
    def session(self) -> Session:
        if self.opened is None:
            self.connection = self.engine.connect()
            self.opened = self.make_session(bind=self.connection)
        return self.opened

    def close(self) -> None:
        """Rolls back what the worker left uncommitted and returns its connection to the pool."""
        if self.opened is not None:
            self.opened.close()
            self.connection.close()

    def invalidate(self) -> None:
        """Closes the worker's connection outright: the database rolls back and drops its locks now
        (for a worker killed mid-transaction, whose session cannot be rolled back politely)."""
        if self.connection is not None:
            self.connection.invalidate()

    def ping(self) -> None:
        """One round trip to the database; raises when it cannot be reached (the health check)."""
        self.session.execute(text("SELECT 1"))


class MigrationFailed(Exception):
    """The database could not be brought to the service's schema: the service does not start."""


def upgrade_in_child(package: str, url: str) -> str:
    """`migrate <package>` on `url` in a child interpreter; returns the line it printed.

    A child, so Alembic and Mako (12 MiB of a receiver's RSS, measured here) are never loaded into a
    service process that runs for days: the schema is upgraded once, at start. The child takes the
    same advisory lock on PostgreSQL as the `migrate` job, so replicas starting together take turns.
    """
    done = subprocess.run(
        [sys.executable, "-m", "common.migrations", package],
        env={**os.environ, f"{package.upper()}_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise MigrationFailed(f"migrating {package}'s database failed:\n{done.stderr.strip()[-3000:]}")
    return done.stdout.strip()


class Database(DependencyProvider):
    """Injects a `WorkerDatabase` with a fresh `Session`; whatever a worker leaves uncommitted is
    rolled back.

    `migrations` names the package whose `migrations/` holds the schema's Alembic history. With
    `DATABASE_AUTO_MIGRATE` true (the default, for the embedded SQLite) the service upgrades its
    database at start (`upgrade_in_child`); compose and Kubernetes set it false and run the
    `migrate` job first.
    """

    def __init__(self, metadata: MetaData, migrations: str):
        self.metadata = metadata
        self.migrations = migrations

    def setup(self):
        settings = settings_of(self.container, DatabaseSettings)
        url = settings.DATABASE_URL
        if url.startswith("sqlite"):
            refuse_network_filesystem(url)
        if settings.DATABASE_AUTO_MIGRATE:
            log.info("schema: %s", upgrade_in_child(self.migrations, url))
        self.engine = make_engine(url, workers=self.container.max_workers)
        self.make_session = sessionmaker(self.engine, expire_on_commit=False)
        self.workers: dict = {}

    def stop(self):
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx) -> WorkerDatabase:
        database = self.workers[worker_ctx] = WorkerDatabase(self.engine, self.make_session)
        return database

    def worker_teardown(self, worker_ctx):
        database = self.workers.pop(worker_ctx, None)
        if database is not None:
            database.close()
