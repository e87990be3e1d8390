"""`nameko-probe`: is this service able to do its work? For compose healthchecks and Kubernetes probes.

    nameko-probe --config services/receiver/config.yaml receiver.service

Reads the same YAML as `nameko run` (environment substitution included) and checks, each with a
timeout:

- broker: an AMQP connection to AMQP_URI opens (TLS too, with AMQP_SSL);
- consumers: each of the service's queues (its RPC queue, one per event handler) exists and has
  at least one consumer, found with a passive queue declare, so no management plugin is needed;
- database: ``SELECT 1`` on DATABASE_URL, when the service has one.

Prints one JSON line and exits 0 when every check passes, 1 otherwise. The consumer check sees
every instance of the service: it says "this service is being served", which is what a
compose healthcheck or a readiness probe wants.
"""

import argparse
import contextlib
import json
import sys
import time

from kombu import Connection
from nameko.cli.run import import_service
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY
from sqlalchemy import text

from common.config import load_config
from common.db import make_engine
from common.topology import service_queues


def check_broker(config: dict, queues: list[str], timeout: float) -> dict:
    checks = {}
    connection = Connection(
        config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY), connect_timeout=timeout
    )
    try:
        connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:
        checks["broker"] = f"unreachable: {type(error).__name__}: {error}"
        return checks
    with connection:
        checks["broker"] = "ok"
        for queue in queues:
            channel = connection.channel()  # a passive declare of a missing queue closes its channel
            try:
                _, _, consumers = channel.queue_declare(queue, passive=True)
                checks[queue] = "ok" if consumers else "no consumer"
            except Exception as error:
                checks[queue] = f"missing: {error}"
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return checks


def check_database(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "ok"
    except Exception as error:
        return f"failed: {type(error).__name__}"
    finally:
        engine.dispose()


def probe(config: dict, service_cls, timeout: float = 5) -> dict:
    started = time.monotonic()
    checks = check_broker(config, service_queues(service_cls, config), timeout)
    if config.get("DATABASE_URL"):
        checks["database"] = check_database(config["DATABASE_URL"])
    healthy = all(result == "ok" for result in checks.values())
    return {
        "service": service_cls.name,
        "healthy": healthy,
        "checks": checks,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nameko-probe", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the service's config.yaml, as for `nameko run`")
    parser.add_argument("--timeout", type=float, default=5, help="seconds per check (default 5)")
    parser.add_argument("service", help="the service's module, as for `nameko run`, e.g. receiver.service")
    args = parser.parse_args(argv)

    sys.path.insert(0, ".")
    config = load_config(args.config)
    [service_cls, *_] = import_service(args.service)
    report = probe(config, service_cls, args.timeout)
    print(json.dumps(report))
    return 0 if report["healthy"] else 1


if __name__ == "__main__":
    sys.exit(main())
