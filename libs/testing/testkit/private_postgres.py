"""A private PostgreSQL cluster for tests that stop and start the database.

The shared cluster on 5432 serves every other test run on this machine: never stop it. This one is
initialised in a temporary directory, listens on a free port of its own (loopback, trust auth, run
as the `postgres` user when started as root), and is removed afterwards:

    with PrivatePostgres() as database:
        run_services(DATABASE_URL=database.url("messages"))
        database.stop()     # an outage: connections drop, the port refuses, the data stays
        database.start()
"""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil
import sqlalchemy

from testkit.processes import free_port

PREFIX = "nameko_private_postgres_"
USER = "postgres"


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("no pg_ctl found: install PostgreSQL's server binaries")
    return Path(pg_ctl).parent


def remove_leftovers():
    """Clusters of test runs that were killed (their owner's pid is gone)."""
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = path.name.removeprefix(PREFIX).split("_")[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            pid_file = path / "data" / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), 9)
            shutil.rmtree(path, ignore_errors=True)


class PrivatePostgres:
    def __init__(self):
        remove_leftovers()
        self.bin = bin_dir()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}_"))
        self.data = self.workdir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.workdir, USER, USER)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def run(self, tool: str, *arguments: str):
        command = [str(self.bin / tool), *arguments]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.workdir)

    def start(self):
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.workdir / "log"), "-w", "start"
        )

    def stop(self):
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+pg8000://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sqlalchemy.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def close(self):
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.close()
