"""What every part of `make bench` runs its targets with: processes of their own on the bench's vhost."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MANAGEMENT = os.environ.get("RABBIT_MANAGEMENT_URL", "http://localhost:15672/api")
AUTH = ("guest", "guest")


class Process:
    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 -- for the life of the process
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def rss_mib(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def nameko_run(name, config, modules, env, log_dir):
    return Process(name, [BIN / "nameko", "run", "--config", config, *modules.split()], env, log_dir)


def wait_consumers(vhost: str, queues: list[str], timeout=60, minimum=1):
    """Until every queue has at least `minimum` consumers (one per instance of its service)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {
            q["name"]: q.get("consumers", 0)
            for q in requests.get(f"{MANAGEMENT}/queues/{vhost}", auth=AUTH, timeout=5).json()
        }
        if all(found.get(q, 0) >= minimum for q in queues):
            return
        time.sleep(0.2)
    raise SystemExit(f"bench: not ready after {timeout}s: {queues}")
