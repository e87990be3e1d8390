"""A private RabbitMQ node for tests and demos that stop, restart or cut off the broker.

The shared broker on 5672 serves every other test run on this machine: never stop it. This starts
a node of its own (own name, ports, data directory; management plugin on its own port), which can be
taken down and brought back, and is removed afterwards:

    with PrivateBroker() as broker:
        run_services(AMQP_URI=broker.amqp_uri)
        broker.stop_app()     # an outage: connections drop, the port refuses, durable data stays
        broker.start_app()
        broker.restart()      # the whole node, as a host or container restart does

`python -m tests.private_broker` starts one and prints its URIs until Ctrl-C.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import requests

from testkit.processes import free_port, wait_for
from testkit.rabbit import RabbitAdmin

RABBITMQ_SERVER = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
RABBITMQ_USER = "rabbitmq"  # Debian's wrapper scripts drop to this user: it must own the node's files
PREFIX = "nameko_private_broker_"


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def remove_leftovers():
    """Nodes of test runs that were killed (their owner's pid is gone)."""
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = path.name.removeprefix(PREFIX).split("_")[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            node = f"rabbit_{path.name}@localhost"
            subprocess.run([RABBITMQCTL, "-n", node, "stop"], capture_output=True, timeout=60)
            shutil.rmtree(path, ignore_errors=True)


class PrivateBroker:
    def __init__(self, start_timeout: float = 90):
        self.start_timeout = start_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}_"))
        self.node = f"rabbit_{self.workdir.name}@localhost"
        self.port = free_port()
        self.management_port = free_port()
        self.dist_port = free_port()
        self.process: subprocess.Popen | None = None
        (self.workdir / "mnesia").mkdir()
        (self.workdir / "log").mkdir()
        (self.workdir / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n"
        )
        shutil.chown(self.workdir, RABBITMQ_USER, RABBITMQ_USER)
        for path in self.workdir.iterdir():
            shutil.chown(path, RABBITMQ_USER, RABBITMQ_USER)
        self.admin = RabbitAdmin(f"http://guest:guest@127.0.0.1:{self.management_port}")

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def env(self) -> dict:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.workdir / "rabbitmq.pid"),
        }

    def ctl(self, *args: str, timeout: float = 60):
        return subprocess.run(
            [RABBITMQCTL, "-n", self.node, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def queue_counts(self, vhost: str) -> dict[str, tuple[int, int]]:
        """{queue: (ready, unacknowledged)} now; the management API's figures lag by seconds."""
        listed = self.ctl(
            "list_queues",
            "-q",
            "--no-table-headers",
            "-p",
            vhost,
            "name",
            "messages_ready",
            "messages_unacknowledged",
        )
        counts = {}
        for line in listed.stdout.splitlines():
            name, ready, unacked = line.split("\t")
            counts[name] = (int(ready), int(unacked))
        return counts

    def start(self) -> "PrivateBroker":
        self.output = open(self.workdir / "server.out", "ab")  # noqa: SIM115 -- for the life of the node
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=self.env(),
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a demo reaches the demo, which stops the node itself
        )
        self.wait_until_serving()
        return self

    def wait_until_serving(self):
        def serving():
            if self.process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.node} exited:\n{self.server_output()[-3000:]}")
            return port_open(self.port) and self.management_answers()

        wait_for(serving, timeout=self.start_timeout, interval=0.2, message=f"RabbitMQ node {self.node}")

    def management_answers(self) -> bool:
        try:
            return self.admin.http.get(f"{self.admin.base_url}/overview", timeout=2).ok
        except requests.RequestException:
            return False

    def server_output(self) -> str:
        return (self.workdir / "server.out").read_text(errors="replace")

    def stop_app(self):
        """An outage: every client connection drops and the port refuses; the node and its disk stay."""
        self.ctl("stop_app")
        wait_for(lambda: not port_open(self.port), timeout=30, message="the AMQP port to close")

    def start_app(self):
        self.ctl("start_app")
        self.wait_until_serving()

    def stop(self):
        """Stops the whole node; durable queues and persistent messages stay on disk."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.ctl("stop")
                self.process.wait(60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self.kill()
                return
        self.output.close()
        self.process = None

    def kill(self):
        """A crash: SIGKILL to the node. What was confirmed to publishers is on disk."""
        # Debian's wrapper runs the node through `su`, in a session of its own: kill that one too.
        beam_pid = int((self.workdir / "rabbitmq.pid").read_text())
        for group in {os.getpgid(beam_pid), os.getpgid(self.process.pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait()
        wait_for(lambda: not alive(beam_pid), timeout=30, message="the node to die")
        (self.workdir / "rabbitmq.pid").unlink(missing_ok=True)
        self.output.close()
        self.process = None

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "PrivateBroker":
        remove_leftovers()
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info):
        self.close()


if __name__ == "__main__":
    with PrivateBroker() as broker:
        print(f"AMQP_URI={broker.amqp_uri}\nmanagement: {broker.management_url} (Ctrl-C stops it)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
