"""SQLAlchemy for Nameko services: one engine per service container, one session per worker.

Commit inside the entrypoint (``with session.begin(): ...``), never in ``worker_result``:
nameko publishes an RPC reply *before* ``worker_result`` runs, so a caller could otherwise
read back a row that is not committed yet.
"""

from nameko.extensions import DependencyProvider
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///service.sqlite3"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # Greenthreads all run on one OS thread, but monkey-patching makes each look like its own.
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database(DependencyProvider):
    """Injects a fresh `Session`; whatever a worker leaves uncommitted is rolled back.

    `migrations` names the package whose `migrations/` holds the schema's Alembic history. With
    `DATABASE_AUTO_MIGRATE` true (the default, for the embedded SQLite) the service upgrades its
    database at start; compose and Kubernetes set it false and run the `migrate` job first.
    """

    def __init__(self, metadata: MetaData, migrations: str):
        self.metadata = metadata
        self.migrations = migrations

    def setup(self):
        config = self.container.config
        url = config.get("DATABASE_URL") or DEFAULT_URL
        if str(config.get("DATABASE_AUTO_MIGRATE", True)).lower() not in ("false", "0", "no", "off"):
            from common.migrations import upgrade

            upgrade(self.migrations, url)
        self.engine = make_engine(url)
        self.make_session = sessionmaker(self.engine, expire_on_commit=False)
        self.sessions: dict = {}

    def stop(self):
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx) -> Session:
        session = self.sessions[worker_ctx] = self.make_session()
        return session

    def worker_teardown(self, worker_ctx):
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()
