"""Container health: exit 0 while this container holds an established connection to the broker.

A Nameko service keeps one AMQP connection open for as long as it consumes; if the broker goes
away it retries and the connection is gone meanwhile. Reads /proc/net/tcp{,6}, so it sees every
socket of the container's network namespace, and needs nothing but the standard library.

    python -m common.healthcheck [--config services/<dir>/config.yaml]
                                        (Dockerfile HEALTHCHECK, Kubernetes exec probe)

The broker's address comes from the config file when given, else from AMQP_URI; with no port in
it, the scheme's: 5671 for amqps://, 5672 for amqp://.
"""

import argparse
import os
import sys
from urllib.parse import urlparse

ESTABLISHED = "01"
AMQP_PORTS = {"amqp": 5672, "amqps": 5671}


def broker_port(amqp_uri: str) -> int:
    """The port `amqp_uri` names, else its scheme's default: 5671 for amqps, 5672 for amqp."""
    parsed = urlparse(amqp_uri)
    return parsed.port or AMQP_PORTS.get(parsed.scheme, 5672)


def established_remote_ports(tables=("/proc/net/tcp", "/proc/net/tcp6")) -> set[int]:
    ports = set()
    for table in tables:
        try:
            with open(table) as sockets:
                next(sockets)
                for line in sockets:
                    fields = line.split()
                    if fields[3] == ESTABLISHED:
                        ports.add(int(fields[2].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.healthcheck", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", help="the service's config.yaml (default: AMQP_URI from the environment)")
    args = parser.parse_args(argv)
    if args.config:  # reading YAML as nameko does imports nameko: only when asked
        from common.config import load_config

        amqp_uri = load_config(args.config)["AMQP_URI"]
    else:
        amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost")
    port = broker_port(amqp_uri)
    if port in established_remote_ports():
        return 0
    print(f"unhealthy: no connection to the broker (port {port})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
