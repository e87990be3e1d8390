"""The project's pytest fixtures: a RabbitMQ vhost and PostgreSQL databases of the run's own, service
configs pointed at them, the local stack, an S3 server, SQLite sessions for the domain functions.

Registered by `testkit.plugin` (the pytest11 entry point). Every run gets its own vhost and
databases, removed at the end; leftovers of a run that was killed are recognised by the dead pid in
their name and removed.
"""

import os
import uuid
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
import sqlalchemy
from sqlalchemy.orm import Session, sessionmaker

from common.config import load_config
from common.db import make_engine
from testkit.localstack import make_local_stack
from testkit.private_broker import PrivateBroker
from testkit.processes import ROOT
from testkit.rabbit import RabbitAdmin, is_leftover, run_name, with_vhost

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+pg8000://postgres@localhost:5432")


@pytest.fixture(scope="session")
def rabbit_admin(pytestconfig):
    """The management API at nameko's `--rabbit-ctl-uri`; vhosts of killed runs removed first."""
    admin = RabbitAdmin(pytestconfig.getoption("RABBIT_API_URI"))
    admin.remove_leftovers()
    return admin


@pytest.fixture(scope="session")
def broker_uri(pytestconfig) -> str:
    """The broker of nameko's `--amqp-uri` (default `pyamqp://guest:guest@localhost`), any vhost."""
    return with_vhost(pytestconfig.getoption("RABBIT_AMQP_URI"), "")


@pytest.fixture(scope="session")
def vhost(rabbit_admin, broker_uri):
    name = run_name()
    rabbit_admin.create_vhost(name, user=urlparse(broker_uri).username or "guest")
    yield name
    rabbit_admin.delete_vhost(name)


@pytest.fixture(scope="session")
def amqp_uri(vhost, broker_uri):
    """Overrides nameko's per-test vhost fixture: one vhost for the whole run is enough and faster."""
    return with_vhost(broker_uri, vhost)


@pytest.fixture
def own_vhost(rabbit_admin, broker_uri):
    """A vhost of the test's own: (name, AMQP URI). Events a test leaves in a queue (a retry that is
    still waiting in its retry queue) must not reach the next test's services."""
    with rabbit_admin.scratch_vhost(broker_uri) as scratch:
        yield scratch.name, scratch.amqp_uri


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
    everything with SIGTERM at the end of the test. Returns the `testkit.localstack.LocalStack`.
    """
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
    Call the factory for each operation: a worker gets a fresh session, so must a test. Each call
    closes the session the call before made, as WorkerDatabase closes a worker's at its teardown:
    left to the garbage collector (a Session sits in a reference cycle), a read's transaction kept
    SQLite's write lock (every BEGIN is IMMEDIATE), and the next operation failed with `database is
    locked` (seen once in a full `make test`)."""
    engines = []

    def make(metadata) -> Callable[[], Session]:
        engine = make_engine(f"sqlite:///{tmp_path}/domain-{len(engines)}.sqlite3")
        engines.append(engine)
        metadata.create_all(engine)
        sessions, current = sessionmaker(engine, expire_on_commit=False), None

        def session() -> Session:
            nonlocal current
            if current is not None:
                current.close()
            current = sessions()
            return current

        return session

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="session")
def private_broker():
    """A RabbitMQ node of this run's own, for tests that crash, stop or restart the broker."""
    with PrivateBroker() as broker:
        yield broker


@pytest.fixture
def private_amqp_uri(private_broker):
    """A fresh vhost on the private broker (it may have been restarted since the last test)."""
    private_broker.wait_until_serving()
    vhost = run_name()
    private_broker.admin.create_vhost(vhost)
    return private_broker.amqp_uri + vhost, vhost
