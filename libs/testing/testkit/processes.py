"""Helpers for tests that drive real processes: wait on observable conditions, never on fixed sleeps."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# The project's checkout: this package is installed from it in place (`pip install -e libs/testing`).
ROOT = Path(__file__).resolve().parents[3]
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
