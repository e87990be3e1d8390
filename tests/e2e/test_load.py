"""`make load` for a few seconds against a running stack (local `nameko run` processes on this run's
vhost and PostgreSQL): Locust's HTTP and RPC users, every request counted, none failed."""

import json
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
