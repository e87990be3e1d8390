"""Fixtures for tests against the real broker and database of this machine.

Every test run gets its own RabbitMQ vhost and its own PostgreSQL databases, removed at the end.
Leftovers of a run that was killed are recognised by the dead pid in their name and removed.
"""

import os
import re
import uuid
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy
from sqlalchemy.orm import Session, sessionmaker

from common.config import load_config
from common.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
RABBIT_HOST = os.environ.get("RABBIT_HOST", "localhost")
RABBIT_MANAGEMENT = os.environ.get("RABBIT_MANAGEMENT_URL", f"http://{RABBIT_HOST}:15672/api")
RABBIT_AUTH = ("guest", "guest")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+pg8000://postgres@localhost:5432")
TEST_PREFIX = "nameko_test_"
LEFTOVER = re.compile(rf"^{TEST_PREFIX}(\d+)_")


def run_name() -> str:
    return f"{TEST_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"


def is_leftover(name: str) -> bool:
    match = LEFTOVER.match(name)
    return bool(match) and not psutil.pid_exists(int(match.group(1)))


class RabbitAdmin:
    """The management HTTP API, for what AMQP cannot do: vhosts, queue stats, consumers."""

    def __init__(self, base_url: str = RABBIT_MANAGEMENT):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.auth = RABBIT_AUTH

    def request(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.base_url}/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_vhost(self, vhost: str):
        self.request("PUT", f"vhosts/{vhost}")
        self.request(
            "PUT", f"permissions/{vhost}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        )

    def delete_vhost(self, vhost: str):
        self.http.delete(f"{self.base_url}/vhosts/{vhost}", timeout=10)

    def vhosts(self) -> list[str]:
        return [vhost["name"] for vhost in self.request("GET", "vhosts")]

    def queues(self, vhost: str) -> list[dict]:
        return self.request("GET", f"queues/{vhost}")

    def consumers(self, vhost: str, queue: str) -> int:
        for found in self.queues(vhost):
            if found["name"] == queue:
                return found.get("consumers", 0)
        return 0


@pytest.fixture(scope="session")
def rabbit_admin():
    admin = RabbitAdmin()
    for vhost in admin.vhosts():
        if is_leftover(vhost):
            admin.delete_vhost(vhost)
    return admin


@pytest.fixture(scope="session")
def vhost(rabbit_admin):
    name = run_name()
    rabbit_admin.create_vhost(name)
    yield name
    rabbit_admin.delete_vhost(name)


@pytest.fixture(scope="session")
def amqp_uri(vhost):
    """Overrides nameko's per-test vhost fixture: one vhost for the whole run is enough and faster."""
    return f"amqp://guest:guest@{RABBIT_HOST}:5672/{vhost}"


@pytest.fixture
def own_vhost(rabbit_admin):
    """A vhost of the test's own: (name, AMQP URI). Events a test leaves in a queue (a retry that is
    still waiting in its retry queue) must not reach the next test's services."""
    name = run_name()
    rabbit_admin.create_vhost(name)
    yield name, f"amqp://guest:guest@{RABBIT_HOST}:5672/{name}"
    rabbit_admin.delete_vhost(name)


@pytest.fixture(scope="session")
def postgres():
    """Creates PostgreSQL databases for this run; drops them (and killed runs' leftovers) at the end."""
    admin = sqlalchemy.create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    created = []

    def drop(name):
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    with admin.connect() as connection:
        existing = connection.execute(sqlalchemy.text("SELECT datname FROM pg_database")).scalars().all()
    for name in filter(is_leftover, existing):
        drop(name)

    def create_database() -> str:
        name = run_name()
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return f"{POSTGRES_URL}/{name}"

    yield create_database
    for name in created:
        drop(name)
    admin.dispose()


@pytest.fixture
def service_config(amqp_uri, postgres):
    """A service's own config.yaml, pointed at this run's vhost and a fresh PostgreSQL database."""

    def make(service_dir: str, **overrides) -> dict:
        config = load_config(ROOT / "services" / service_dir / "config.yaml")
        config["AMQP_URI"] = amqp_uri
        if "DATABASE_URL" in config:
            config["DATABASE_URL"] = postgres()
        config.update(overrides)
        return config

    return make


@pytest.fixture
def local_stack(amqp_uri, postgres, tmp_path):
    """Starts docker-compose.yml's services as local processes: `local_stack(scale={"receiver": 3})`.

    Runs the one-shot jobs (migrations) first, waits until every instance consumes, and stops
    everything with SIGTERM at the end of the test. Returns the `stack.runner.LocalStack`.
    """
    from tests.support import make_local_stack

    stacks = []

    def start(*services, wait: bool = True, **options):
        stack = make_local_stack(
            amqp_uri, postgres, tmp_path / f"stack-{len(stacks)}", services=list(services) or None, **options
        )
        stacks.append(stack)
        stack.run_jobs()
        stack.start()
        if wait:
            stack.wait_ready()
        return stack

    yield start
    for stack in stacks:
        stack.close()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API over HTTP (moto's server mode) for the whole run: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server):
    """boto3 pointed at the test S3 server, and a bucket name of this test's own (not created yet)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    settings = {
        "S3_ENDPOINT_URL": s3_server,
        "S3_BUCKET": f"bucket-{uuid.uuid4().hex[:12]}",
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
    }
    return client, settings


@pytest.fixture
def sqlite_sessions(tmp_path):
    """Sessions on a fresh SQLite file with `metadata`'s tables, the engine configured as the services
    configure theirs (WAL, BEGIN IMMEDIATE): the fast tier for the domain functions, no server.
    Call the factory for each operation: a worker gets a fresh session, so must a test."""
    engines = []

    def make(metadata) -> sessionmaker[Session]:
        engine = make_engine(f"sqlite:///{tmp_path}/domain-{len(engines)}.sqlite3")
        engines.append(engine)
        metadata.create_all(engine)
        return sessionmaker(engine, expire_on_commit=False)

    yield make
    for engine in engines:
        engine.dispose()
