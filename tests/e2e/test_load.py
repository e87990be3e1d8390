"""`make load` for a few seconds against a running stack (local `nameko run` processes on this run's
vhost and PostgreSQL): Locust's HTTP and RPC users, every request counted, none failed."""

import json
import os
import subprocess

from testkit.processes import ROOT

EXPECTED_REQUESTS = {
    ("POST", "/messages"),
    ("GET", "/messages/[id]"),
    ("rpc", "message_service.receive_message"),
    ("rpc", "message_service.get_message"),
    ("rpc", "receiver_service.receive_event"),
}


def test_make_load_reports_http_and_rpc_requests_with_no_failures(local_stack, amqp_uri, tmp_path):
    stack = local_stack("message", "time_consuming", "receiver")
    report = tmp_path / "load"

    result = subprocess.run(
        [
            "make", "--no-print-directory", "load", "LOAD_USERS=4", "LOAD_SPAWN_RATE=4", "LOAD_DURATION=5s",
            f"LOAD_HOST=http://{stack.instances['message-1'].web_address}", f"LOAD_REPORT={report}",
            f"AMQP_URI={amqp_uri}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    entries = json.loads((report / "load.json").read_text())  # Locust's final statistics
    stats = {(entry["method"], entry["name"]): entry for entry in entries}
    assert set(stats) == EXPECTED_REQUESTS, result.stdout[-4000:] + result.stderr[-4000:]
    assert {name: entry["num_failures"] for name, entry in stats.items()} == dict.fromkeys(stats, 0)
    assert all(entry["num_requests"] > 0 for entry in stats.values()), stats
    # the summary table at the end, and Locust's own CSV and HTML reports
    total = sum(entry["num_requests"] for entry in stats.values())
    [aggregated] = [line.split() for line in result.stdout.splitlines() if line.startswith("-  ")]
    assert aggregated[2:4] == [str(total), "0"]
    assert (report / "load_stats.csv").exists() and (report / "report.html").exists()


SLOW_IMPORT_LOCUSTFILE = """
import time

from locust import User, constant, task

started = time.perf_counter()
while time.perf_counter() - started < 3:  # importing, busy, longer than the run
    pass

import load.locustfile  # noqa: E402,F401  -- its init listener, and nothing else of it


class Counting(User):
    wait_time = constant(0.1)

    @task
    def count(self):
        self.environment.events.request.fire(
            request_type="count", name="task", response_time=0, response_length=0, exception=None, context={}
        )
"""


def test_a_run_lasts_its_run_time_even_when_importing_the_locustfile_took_longer(tmp_path):
    locustfile = tmp_path / "slow_import.py"
    locustfile.write_text(SLOW_IMPORT_LOCUSTFILE)

    result = subprocess.run(
        [
            ROOT / ".venv/bin/python", "-m", "locust", "-f", str(locustfile), "--headless", "--users", "1",
            "--spawn-rate", "1", "--run-time", "2s", "--json", "--only-summary",
        ],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    [stats] = json.loads(result.stdout)
    # 2 s of a task that waits 0.1 s: about 20 runs; with the timer counting from before the
    # 3-s import, the run stopped as soon as it started (0 or 1)
    assert stats["num_requests"] >= 10, stats
