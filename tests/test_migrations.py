"""Each service's Alembic history builds exactly the schema its models describe, on PostgreSQL."""

import json
import os
import subprocess

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from common.db import MigrationFailed, make_engine
from common.migrations import LOCK_KEY, alembic_config, current, head, upgrade, version_table
from message.messages import Base as MessageBase
from receiver.receipts import Base as ReceiverBase
from receiver.service import ReceiverService
from testkit.processes import BIN, ROOT, wait_for
from time_consuming.jobs import Base as TimeConsumingBase

MODELS = {
    "message": MessageBase.metadata,
    "time_consuming": TimeConsumingBase.metadata,
    "receiver": ReceiverBase.metadata,
}


def drift(package: str, url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": version_table(package)}
            )
            return compare_metadata(context, MODELS[package])
    finally:
        engine.dispose()


@pytest.mark.parametrize("package", MODELS)
def test_the_migrations_build_what_the_models_describe(postgres, package):
    url = postgres()

    upgrade(package, url)

    assert current(package, url) == head(package)
    assert drift(package, url) == []


@pytest.mark.parametrize("package", MODELS)
def test_every_migration_downgrades_cleanly(postgres, package):
    url = postgres()
    upgrade(package, url)

    command.downgrade(alembic_config(package, url), "base")
    engine = make_engine(url)
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names()) - {version_table(package)}
    engine.dispose()

    assert tables == set()


def test_migrators_started_together_take_turns(postgres):
    """Replicas started with DATABASE_AUTO_MIGRATE=true race; an advisory lock makes them take turns."""
    url = postgres()
    env = {**os.environ, "RECEIVER_DATABASE_URL": url}
    engine = make_engine(url)
    with engine.connect() as holder:
        holder.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        holder.commit()
        migrators = [
            subprocess.Popen(
                [BIN / "migrate", "receiver"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        waiting = sqlalchemy.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = :key"
        )
        wait_for(
            lambda: holder.execute(waiting, {"key": LOCK_KEY}).scalar() == 3,
            timeout=60,
            message="three migrators waiting for the lock",
        )
        holder.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        holder.commit()
    engine.dispose()
    outputs = [migrator.communicate(timeout=60)[0] for migrator in migrators]

    assert [migrator.returncode for migrator in migrators] == [0, 0, 0]
    latest = head("receiver")
    assert sorted(output.split(":")[1].split("(")[0].strip() for output in outputs) == [
        f"already at {latest}",
        f"already at {latest}",
        f"empty -> {latest}",
    ]


@pytest.mark.parametrize(("auto_migrate", "expected"), [(True, head("receiver")), ("false", None)])
def test_a_service_migrates_its_database_at_start_only_when_told_to(
    container_factory, service_config, auto_migrate, expected
):
    config = service_config("receiver", DATABASE_AUTO_MIGRATE=auto_migrate)

    container_factory(ReceiverService, config).start()

    assert current("receiver", config["DATABASE_URL"]) == expected


def test_a_migration_that_fails_at_start_stops_the_service_with_the_migrators_error(
    container_factory, service_config, postgres
):
    missing = postgres().rsplit("/", 1)[0] + "/no_such_database_here"
    config = service_config("receiver", DATABASE_URL=missing, DATABASE_AUTO_MIGRATE=True)

    refused = '(?s)migrating receiver.*"no_such_database_here" does not exist'
    with pytest.raises(MigrationFailed, match=refused):
        container_factory(ReceiverService, config).start()


AFTER_START = """
import eventlet; eventlet.monkey_patch()
import json, sys
from nameko.containers import ServiceContainer
from receiver.service import ReceiverService
container = ServiceContainer(ReceiverService, json.loads(sys.argv[1]))
container.start()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"alembic", "mako", "sqlalchemy"})))
container.stop()
"""


def test_the_migration_at_start_runs_in_a_child_and_alembic_never_loads_in_the_service(service_config):
    config = service_config("receiver", DATABASE_AUTO_MIGRATE=True)
    started = subprocess.run(
        [BIN / "python", "-W", "ignore", "-c", AFTER_START, json.dumps(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr[-3000:]
    assert json.loads(started.stdout.strip().splitlines()[-1]) == ["sqlalchemy"]
    assert current("receiver", config["DATABASE_URL"]) == head("receiver")  # the child did migrate it
