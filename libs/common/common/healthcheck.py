"""Container health: exit 0 while this container holds an established connection to the broker.

A Nameko service keeps one AMQP connection open for as long as it consumes; if the broker goes
away it retries and the connection is gone meanwhile. Reads /proc/net/tcp{,6}, so it sees every
socket of the container's network namespace, and needs nothing but the standard library.

    python -m common.healthcheck        (Dockerfile HEALTHCHECK, Kubernetes exec probe)
"""

import os
import sys
from urllib.parse import urlparse

ESTABLISHED = "01"


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


def main() -> int:
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost")
    port = urlparse(amqp_uri).port or 5672
    if port in established_remote_ports():
        return 0
    print(f"unhealthy: no connection to the broker (port {port})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
