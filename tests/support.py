"""Helpers for tests that drive real processes: wait on observable conditions, never on fixed sleeps."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_for(condition, timeout: float = 30, interval: float = 0.05, message: str = "condition"):
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rpc_queue(service_name: str) -> str:
    return f"rpc-{service_name}"


def make_local_stack(amqp_uri: str, postgres, log_dir: Path, **options):
    """docker-compose.yml's services as local processes (`stack.runner.LocalStack`), on this run's vhost.

    Every service that has a `DATABASE_URL` in compose gets a fresh PostgreSQL database, and the
    one-shot jobs get the same URLs under the names compose gives them (`MESSAGE_DATABASE_URL`...).
    Call `run_jobs()`, `start()` and `wait_ready()` on it; `close()` stops it.
    """
    from stack.runner import LocalStack
    from tests.fixtures import RABBIT_MANAGEMENT

    stack = LocalStack(
        ROOT / "docker-compose.yml",
        env={"AMQP_URI": amqp_uri, **options.pop("env", {})},
        log_dir=log_dir,
        management_url=options.pop("management_url", RABBIT_MANAGEMENT),
        **options,
    )
    databases = {
        service.name: postgres() for service in stack.services if "DATABASE_URL" in service.environment
    }
    for name, url in databases.items():
        stack.service_env.setdefault(name, {})["DATABASE_URL"] = url
    for job in stack.project.jobs:
        stack.service_env.setdefault(job.name, {}).update(
            {f"{name.upper()}_DATABASE_URL": url for name, url in databases.items()}
        )
    return stack


@contextmanager
def running_stack(amqp_uri: str, postgres, log_dir: Path, **options):
    """`make_local_stack`, its jobs run, every instance ready; stopped when the block ends."""
    stack = make_local_stack(amqp_uri, postgres, log_dir, **options)
    stack.run_jobs()
    stack.start()
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.close()


class ServiceProcess:
    """One `nameko run --config services/<dir>/config.yaml <dir>.service`, as a user starts it."""

    def __init__(self, service_dir: str, env: dict, log_dir: Path, name: str | None = None):
        self.service_dir = service_dir
        self.log_path = log_dir / f"{name or service_dir}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 -- open for the life of the process
        self.process = subprocess.Popen(
            [
                BIN / "nameko",
                "run",
                "--config",
                f"services/{service_dir}/config.yaml",
                f"{service_dir}.service",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as `docker stop` sends; SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode
