"""The container health check: healthy while a connection to the broker's port is established."""

import socket
import subprocess
import sys


def healthcheck(amqp_uri: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "common.healthcheck"],
        env={"AMQP_URI": amqp_uri},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthy_only_while_connected_to_the_broker_port():
    with socket.create_server(("127.0.0.1", 0)) as broker:
        port = broker.getsockname()[1]
        uri = f"amqp://guest:guest@127.0.0.1:{port}/"
        before = healthcheck(uri)
        with socket.create_connection(("127.0.0.1", port)):
            during = healthcheck(uri)

    assert (before.returncode, before.stderr) == (
        1,
        f"unhealthy: no connection to the broker (port {port})\n",
    )
    assert during.returncode == 0


def test_an_amqps_uri_without_a_port_means_5671():
    assert healthcheck("amqps://guest:guest@127.0.0.1/").stderr == (
        "unhealthy: no connection to the broker (port 5671)\n"
    )
