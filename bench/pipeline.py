"""The message pipeline on the embedded SQLite default beside the same run on PostgreSQL.

Each run: fresh databases (SQLite files in a temp dir, or PostgreSQL databases created here and
dropped after), message_service and time_consuming_service as real `nameko run` processes with their
own config.yaml, the local object store in a temp dir, and a webhook sink in this process on loopback
counting notifications by their Idempotency-Key. After one warm-up message (not counted), `messages`
messages with payloads go to `receive_message`, `in_flight` at a time, timed from the first call
until `get_message` says every one is `done`. Rounds alternate which database goes first, so drift
hits both alike.
"""

import collections
import contextlib
import http.server
import os
import re
import socket
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
import sqlalchemy
from nameko.standalone.rpc import ClusterRpcProxy

from bench.processes import AUTH, MANAGEMENT, nameko_run, wait_consumers

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+pg8000://postgres@localhost:5432")
DATABASE_PREFIX = "bench_pipeline_"
DATABASES = ("SQLite", "PostgreSQL")
SERVICES = {"message": "message.service", "time_consuming": "time_consuming.service"}
EVENT_QUEUES = (
    "evt-message_service-heavy_payload_event--time_consuming_service.time_consuming_event_handler",
    "evt-time_consuming_service-payload_processed--message_service.on_payload_processed",
)
POLL_SECONDS = 0.05  # between two get_message calls on a message still pending


class WebhookSink:
    """Where time_consuming_service POSTs its notifications: each one's Idempotency-Key, in order."""

    def __init__(self):
        self.keys: list[str | None] = []
        keys = self.keys

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                keys.append(self.headers.get("Idempotency-Key"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass  # one line per notification would bury the progress bar

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def fresh_databases(database: str, directory: Path):
    """One new database per service: SQLite files under `directory`, or PostgreSQL databases."""
    if database == "SQLite":
        yield {service: f"sqlite:///{directory / f'{service}.sqlite3'}" for service in SERVICES}
        return
    admin = sqlalchemy.create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    names = {
        service: f"{DATABASE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:6]}_{service}" for service in SERVICES
    }
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield {service: f"{POSTGRES_URL}/{name}" for service, name in names.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def drop_leftover_databases():
    """Databases of bench runs that were killed before they could drop theirs."""
    admin = sqlalchemy.create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    leftover = re.compile(rf"^{DATABASE_PREFIX}(\d+)_")
    try:
        with admin.connect() as connection:
            for name in connection.execute(sqlalchemy.text("SELECT datname FROM pg_database")).scalars():
                match = leftover.match(name)
                if match and not psutil.pid_exists(int(match.group(1))):
                    connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def purge_event_queues(vhost: str):
    """A run that timed out leaves events behind: the next run's services must not see them."""
    for queue in requests.get(f"{MANAGEMENT}/queues/{vhost}", auth=AUTH, timeout=10).json():
        if queue["name"].startswith(EVENT_QUEUES) or queue["name"] == "dead-letters":
            requests.delete(f"{MANAGEMENT}/queues/{vhost}/{queue['name']}/contents", auth=AUTH, timeout=10)


def warm_up(message_service, sink, timeout=60):
    """One message through the whole flow first: both processes' connections opened, code loaded."""
    id_ = message_service.receive_message({"message": "warm-up", "payload": {}})["id"]
    deadline = time.perf_counter() + timeout
    while message_service.get_message(id_)["status"] == "pending" and time.perf_counter() < deadline:
        time.sleep(POLL_SECONDS)
    sink.keys.clear()


def send_and_wait(message_service, messages, in_flight, timeout, advance):
    """Seconds from the first call until every message is `done` (or the timeout), and the records."""
    started = time.perf_counter()
    window, ids = collections.deque(), []
    for number in range(messages):
        if len(window) == in_flight:
            ids.append(window.popleft().result()["id"])
        window.append(
            message_service.receive_message.call_async(
                {"message": f"bench {number}", "payload": {"number": number, "items": list(range(10))}}
            )
        )
    ids.extend(reply.result()["id"] for reply in window)
    # Messages finish roughly in the order they were sent: wait on each in turn, so only one
    # get_message at a time loads message_service while the pipeline works.
    deadline = started + timeout
    records = []
    for id_ in ids:
        record = message_service.get_message(id_)
        while record["status"] == "pending" and time.perf_counter() < deadline:
            time.sleep(POLL_SECONDS)
            record = message_service.get_message(id_)
        records.append(record)
        advance()
    return time.perf_counter() - started, records


def time_to_done(record) -> float:
    """Seconds from message_service storing the message to it recording `done` (one clock: its own)."""
    return (
        datetime.fromisoformat(record["updated_at"]) - datetime.fromisoformat(record["created_at"])
    ).total_seconds()


def run_once(database, amqp_uri, vhost, messages, in_flight, timeout, log_dir, sink, advance) -> dict:
    directory = Path(tempfile.mkdtemp(prefix=f"pipeline-{database.lower()}-", dir=log_dir))
    with fresh_databases(database, directory) as urls:
        env = {
            "AMQP_URI": amqp_uri,
            "LOG_LEVEL": "WARNING",
            "LOCAL_STORE_DIR": str(directory / "objects"),
            "WEBHOOK_URL": sink.url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        processes = [
            nameko_run(
                service,
                f"services/{service}/config.yaml",
                module,
                {**env, "DATABASE_URL": urls[service]},
                directory,
            )
            for service, module in SERVICES.items()
        ]
        try:
            wait_consumers(vhost, ["rpc-message_service", *EVENT_QUEUES])
            with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster:
                warm_up(cluster.message_service, sink)
                seconds, records = send_and_wait(
                    cluster.message_service, messages, in_flight, timeout, advance
                )
            alive = all(process.alive() for process in processes)
        finally:
            for process in processes:
                process.stop()
            purge_event_queues(vhost)
    statuses = collections.Counter(record["status"] for record in records)
    keys = list(sink.keys)
    return {
        "seconds": seconds,
        "done": statuses["done"],
        "statuses": dict(statuses),
        # The Idempotency-Key is the message id: count the keys of this run's messages.
        "webhook_keys": len(set(keys) & {record["id"] for record in records}),
        "repeated_notifications": len(keys) - len(set(keys)),
        "processes_alive": alive,
        "database_is_locked": sum(
            process.log_path.read_text(errors="replace").count("database is locked") for process in processes
        ),
        "time_to_done": sorted(time_to_done(record) for record in records if record["status"] == "done"),
    }


def percentile(values, share):
    return values[min(len(values) - 1, int(len(values) * share))] if values else None


def measure_pipeline(amqp_uri, vhost, rounds, messages, in_flight, timeout, log_dir, progress) -> dict:
    drop_leftover_databases()
    load_before = os.getloadavg()
    measured_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    task = progress.add_task("pipeline", total=rounds * len(DATABASES) * messages)
    sink = WebhookSink()
    runs, time_to_done_by_database = [], {database: [] for database in DATABASES}
    try:
        for round_number in range(1, rounds + 1):
            # SQLite first in odd rounds, PostgreSQL first in even ones.
            order = DATABASES if round_number % 2 else DATABASES[::-1]
            for position, database in enumerate(order, 1):
                progress.update(task, description=f"pipeline round {round_number}/{rounds}: {database}")
                run = run_once(
                    database,
                    amqp_uri,
                    vhost,
                    messages,
                    in_flight,
                    timeout,
                    log_dir,
                    sink,
                    lambda: progress.advance(task),
                )
                latencies = run.pop("time_to_done")
                time_to_done_by_database[database] += latencies
                runs.append(
                    {
                        "round": round_number,
                        "position": position,
                        "database": database,
                        **run,
                        "messages_per_s": run["done"] / run["seconds"],
                        "time_to_done_p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
                        "time_to_done_p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None,
                    }
                )
    finally:
        sink.close()
    summary = {}
    for database in DATABASES:
        complete = [run for run in runs if run["database"] == database and run["done"] == messages]
        latencies = sorted(time_to_done_by_database[database])
        summary[database] = {
            "complete_rounds": len(complete),
            "median_seconds": statistics.median(r["seconds"] for r in complete) if complete else None,
            "median_messages_per_s": statistics.median(r["messages_per_s"] for r in complete)
            if complete
            else None,
            "time_to_done_p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
            "time_to_done_p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None,
        }
    sqlite, postgres = (summary[database]["median_seconds"] for database in DATABASES)
    return {
        "settings": {"rounds": rounds, "messages": messages, "in_flight": in_flight, "timeout_s": timeout},
        "measured_at": measured_at,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "summary": summary,
        "sqlite_vs_postgresql_time": sqlite / postgres if sqlite and postgres else None,
        "rounds": runs,
    }


def report_pipeline(pipeline) -> list[str]:
    settings, summary = pipeline["settings"], pipeline["summary"]
    ratio = pipeline["sqlite_vs_postgresql_time"]

    def number(value, digits=0):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        "",
        "## Pipeline: SQLite default vs PostgreSQL",
        "",
        "| database | complete rounds | median s to all done | messages/s | time-to-done p50 ms "
        "| time-to-done p99 ms | time vs PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for database, s in summary.items():
        versus = "-" if ratio is None else ("1.00x" if database == "PostgreSQL" else f"{ratio:.2f}x")
        lines.append(
            f"| {database} | {s['complete_rounds']}/{settings['rounds']} | {number(s['median_seconds'], 2)} "
            f"| {number(s['median_messages_per_s'], 1)} | {number(s['time_to_done_p50_ms'])} "
            f"| {number(s['time_to_done_p99_ms'])} | {versus} |"
        )
    lines += [
        "",
        f"{settings['messages']} messages with payloads, {settings['in_flight']} in flight "
        "(`receive_message`) after one warm-up message, per round and database: fresh databases, "
        "message_service and time_consuming_service as `nameko run` processes, the local object store, "
        "a webhook on loopback; timed from the first call until every message is `done`. "
        "Time-to-done: message_service's `created_at` to `updated_at`, all rounds pooled. "
        "Target: SQLite within 3x of PostgreSQL. "
        f"Run at {pipeline['measured_at']}, load average (1 min) "
        f"{pipeline['load_average']['before']:.1f} before, "
        f"{pipeline['load_average']['after']:.1f} after: ratios are final only from a quiet machine.",
        "",
        "## Pipeline rounds",
        "",
        "| round | database | order | s to all done | done | distinct webhook keys | repeated notifications "
        "| processes alive | `database is locked` |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for run in pipeline["rounds"]:
        lines.append(
            f"| {run['round']} | {run['database']} | {run['position']} "
            f"| {run['seconds']:.2f}{'' if run['done'] == settings['messages'] else ' (cut: timeout)'} "
            f"| {run['done']}/{settings['messages']} | {run['webhook_keys']} "
            f"| {run['repeated_notifications']} "
            f"| {'yes' if run['processes_alive'] else 'NO'} | {run['database_is_locked']} |"
        )
    return lines
