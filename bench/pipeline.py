"""The message pipeline end to end: the project's services beside the same pipeline as bare Nameko.

Each run is one setup: the project's message_service and time_consuming_service (with their own
config.yaml) or the bare pipeline (bench/bare_pipeline.py), on the SQLite default or PostgreSQL,
with 1, 2 or 4 time_consuming instances, all real `nameko run` processes. Every run gets fresh
databases (SQLite files in a temp dir, or PostgreSQL databases created here and dropped after), the
bench's S3 server (SeaweedFS, the image `make images` builds; moto's server when Docker cannot run
it) and a webhook sink in this process on loopback, counting notifications by their Idempotency-Key,
that answers after `webhook_delay` (0 for the cost rows; a remote webhook's latency for the
scale-out rows, where the work is I/O-bound). PostgreSQL is reached with `sslmode=disable` (both
pipelines, BENCH_POSTGRES_SSLMODE to change it); one row runs over TLS to show what it costs.
After warm-up messages (sent as the measured ones, two per time_consuming worker, every one through
to the webhook, not counted, so every pool holds the connections the measured load uses),
`messages` messages with payloads go to `receive_message`, `in_flight` at a time, timed from the
first call until `get_message` says every one is `done`. Each round runs every setup, in an order
that changes every round and is balanced over rounds (bench/order.py), so drift hits every setup
alike; figures are medians over rounds.
"""

import collections
import contextlib
import http.server
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
import sqlalchemy
from nameko.constants import DEFAULT_MAX_WORKERS
from nameko.standalone.rpc import ClusterRpcProxy

from bench.cpu import BUSY, CpuMeter
from bench.order import round_order
from bench.processes import AUTH, BIN, MANAGEMENT, Process, nameko_run, wait_consumers
from bench.stats import quartiles, with_spread
from common.topology import handler_queue, rpc_queue
from testkit.processes import free_port

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+pg8000://postgres@localhost:5432")
# the services' TLS to PostgreSQL (common.db.tls_of): plain on loopback; `prefer` is pg8000's default
POSTGRES_SSLMODE = os.environ.get("BENCH_POSTGRES_SSLMODE", "disable")
DATABASE_PREFIX = "bench_pipeline_"
SERVICES = ("message", "time_consuming")  # one database each
S3_IMAGE = "nameko-reference/s3:seaweedfs"
S3_CREDENTIALS = {
    "S3_ACCESS_KEY_ID": "bench",
    "S3_SECRET_ACCESS_KEY": "bench-secret",
    "S3_BUCKET": "payloads",
}


@dataclass(frozen=True)
class Implementation:
    """How to run one side: its two services' `nameko run` arguments and the queues that say it is up."""

    config: dict  # service -> config file
    modules: dict  # service -> `nameko run` module argument
    message_service: str  # its name: the RPC intake the bench calls
    work_queue: str  # time_consuming's event queue: one consumer per instance
    outcome_queue: str


IMPLEMENTATIONS = {
    "project": Implementation(
        config={service: f"services/{service}/config.yaml" for service in SERVICES},
        modules={"message": "message.service", "time_consuming": "time_consuming.service"},
        message_service="message_service",
        work_queue=handler_queue(
            "message_service", "heavy_payload_event", "time_consuming_service", "time_consuming_event_handler"
        ),
        outcome_queue=handler_queue(
            "time_consuming_service", "payload_processed", "message_service", "on_payload_processed"
        ),
    ),
    "bare": Implementation(
        config={service: "bench/bare_pipeline.yaml" for service in SERVICES},
        modules={
            "message": "bench.bare_pipeline:BareMessageService",
            "time_consuming": "bench.bare_pipeline:BareTimeConsumingService",
        },
        message_service="bare_message_service",
        work_queue=handler_queue(
            "bare_message_service",
            "heavy_payload_event",
            "bare_time_consuming_service",
            "time_consuming_event_handler",
        ),
        outcome_queue=handler_queue(
            "bare_time_consuming_service", "payload_processed", "bare_message_service", "on_payload_processed"
        ),
    ),
}
EVENT_QUEUES = tuple(q for i in IMPLEMENTATIONS.values() for q in (i.work_queue, i.outcome_queue))


@dataclass(frozen=True)
class Setup:
    implementation: str  # "project" or "bare"
    database: str  # "SQLite" or "PostgreSQL"
    instances: int  # time_consuming processes
    webhook_delay: float  # seconds
    messages: int
    workers: int | None = None  # each time_consuming instance's max_workers; None: nameko's 10
    sslmode: str | None = None  # PostgreSQL's, for this setup only; None: the bench's (POSTGRES_SSLMODE)

    @property
    def label(self) -> str:
        delay = f", webhook {1000 * self.webhook_delay:.0f} ms" if self.webhook_delay else ""
        plural = "s" if self.instances > 1 else ""
        workers = f" of {self.workers} workers" if self.workers else ""
        instances = f"{self.instances} time_consuming{plural}{workers}"
        database = f"{self.database} over TLS (sslmode={self.sslmode})" if self.sslmode else self.database
        return f"{self.implementation}, {database}, {instances}{delay}"


def setups(messages: int, scale_messages: int, webhook_delay: float, scale_workers: int) -> list[Setup]:
    """The cost rows (no webhook latency) and the scale-out rows (I/O-bound: a slow webhook, and
    few workers per instance, so that the instances are the bottleneck, not this machine's cores)."""
    cost = [
        Setup("project", "SQLite", 1, 0.0, messages),
        Setup("project", "PostgreSQL", 1, 0.0, messages),
        Setup("bare", "PostgreSQL", 1, 0.0, messages),
        Setup("project", "PostgreSQL", 2, 0.0, messages),
        Setup("bare", "PostgreSQL", 2, 0.0, messages),
        # what TLS to PostgreSQL costs: pg8000's default, the row above it but for the sslmode
        Setup("project", "PostgreSQL", 2, 0.0, messages, sslmode="prefer"),
    ]
    scale_out = [
        Setup(implementation, "PostgreSQL", instances, webhook_delay, scale_messages, scale_workers)
        for implementation in ("project", "bare")
        for instances in (1, 2, 4)
    ]
    return cost + scale_out


PLOT = "pipeline-scale-out.png"  # written beside results.md
POLL_SECONDS = 0.05  # between two get_message calls on a message still pending
WARM_UP_PER_WORKER = 2  # warm-up messages per time_consuming worker


class WebhookSink:
    """Where time_consuming_service POSTs its notifications: each one's Idempotency-Key, in order."""

    def __init__(self):
        self.keys: list[str | None] = []
        self.delay = 0.0  # seconds before each answer: a remote webhook's latency
        keys, sink = self.keys, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(sink.delay)
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


def committed_transactions(urls: dict) -> int:
    """Transactions committed in the run's PostgreSQL databases, read once its processes are gone
    (a backend reports its counts when it exits)."""
    time.sleep(1)  # the backends of the processes just stopped are still exiting
    admin = sqlalchemy.create_engine(f"{POSTGRES_URL}/postgres")
    names = list({url.rsplit("/", 1)[1] for url in urls.values()})
    try:
        with admin.connect() as connection:
            total = connection.execute(
                sqlalchemy.text("SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = ANY(:names)"),
                {"names": names},
            ).scalar()
            return int(total or 0)  # sum() is a numeric: a Decimal
    finally:
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


def bench_message(number: int) -> dict:
    """A message with a payload: message_service stores it `pending` and hands it to time_consuming.
    (An empty payload means nothing heavy to do, as in the article: such a message is stored
    `received` and goes no further.)"""
    return {"message": f"bench {number}", "payload": {"number": number, "items": list(range(10))}}


def warm_up(message_service, sink, count, in_flight, timeout=60):
    """`count` messages through the whole flow first, `in_flight` at a time as the measured ones go:
    every process's code loaded, first queries compiled, its pools holding the connections that the
    measured load uses (a connection opened while measuring would charge its backend's start to the
    run). Every one must reach the webhook: a warm-up that stopped short of time_consuming would leave
    it cold, and its first connections, queries and garbage collections would count as the run's."""
    _, records = send_and_wait(message_service, count, in_flight, timeout, advance=lambda: None)
    reached = notified(sink.keys, records)
    if reached < count:
        raise SystemExit(f"bench: only {reached} of {count} warm-up messages reached the webhook")
    sink.keys.clear()


def warm_up_count(in_flight, instances, workers=None):
    """Enough for every time_consuming worker to have run a few at once: the broker hands each
    instance up to its `workers` events at a time, and its pools grow to what it ran at once."""
    return max(in_flight, WARM_UP_PER_WORKER * instances * (workers or DEFAULT_MAX_WORKERS))


def service_url(url, sslmode=None):
    """The URL a service gets: on PostgreSQL with the setup's sslmode, else the bench's (both
    pipelines honour it: common.db.tls_of)."""
    return url if url.startswith("sqlite") else f"{url}?sslmode={sslmode or POSTGRES_SSLMODE}"


def send_and_wait(message_service, messages, in_flight, timeout, advance):
    """Seconds from the first call until every message is `done` (or the timeout), and the records."""
    started = time.perf_counter()
    window, ids = collections.deque(), []
    for number in range(messages):
        if len(window) == in_flight:
            ids.append(window.popleft().result()["id"])
        window.append(message_service.receive_message.call_async(bench_message(number)))
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


def notified(keys, records) -> int:
    """How many of the records' messages the webhook saw: the Idempotency-Key is the message id."""
    return len(set(keys) & {record["id"] for record in records})


def time_to_done(record) -> float:
    """Seconds from message_service storing the message to it recording `done` (one clock: its own)."""
    return (
        datetime.fromisoformat(record["updated_at"]) - datetime.fromisoformat(record["created_at"])
    ).total_seconds()


@contextlib.contextmanager
def s3_server(log_dir: Path):
    """The S3 endpoint every run uploads to: SeaweedFS in a container, else moto's server process."""
    port = free_port()
    name = f"bench-s3-{os.getpid()}"
    environment = [f"--env={key}={value}" for key, value in S3_CREDENTIALS.items()]
    started = subprocess.run(
        ["docker", "run", "--detach", "--rm", f"--name={name}", f"--publish=127.0.0.1:{port}:8333"]
        + environment
        + [S3_IMAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    server = None
    if started.returncode == 0:
        kind = "SeaweedFS (container)"
    else:
        kind = f"moto server (no SeaweedFS container: {started.stderr.strip().splitlines()[-1:]})"
        server = Process("s3", [BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)], {}, log_dir)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = s3_client(endpoint)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=S3_CREDENTIALS["S3_BUCKET"])
                break
            except client.exceptions.BucketAlreadyOwnedByYou:
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield endpoint, kind
    finally:
        if server:
            server.stop()
        else:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def s3_client(endpoint):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["S3_SECRET_ACCESS_KEY"],
    )


def run_once(setup: Setup, amqp_uri, vhost, in_flight, timeout, log_dir, sink, s3_endpoint, advance) -> dict:
    implementation = IMPLEMENTATIONS[setup.implementation]
    warm_ups = warm_up_count(in_flight, setup.instances, setup.workers)
    directory = Path(tempfile.mkdtemp(prefix=f"pipeline-{setup.implementation}-", dir=log_dir))
    sink.delay = setup.webhook_delay
    with fresh_databases(setup.database, directory) as urls:
        env = {
            "AMQP_URI": amqp_uri,
            "LOG_LEVEL": "WARNING",
            "S3_ENDPOINT_URL": s3_endpoint,
            **S3_CREDENTIALS,
            "WEBHOOK_URL": sink.url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        names = ["message"] + [f"time_consuming-{n}" for n in range(1, setup.instances + 1)]
        processes = []
        for name in names:
            service = name.split("-")[0]
            workers = {"MAX_WORKERS": str(setup.workers)} if setup.workers and service != "message" else {}
            processes.append(
                nameko_run(
                    name,
                    implementation.config[service],
                    implementation.modules[service],
                    # instances on one host: every web server and metrics endpoint on a port of its own
                    {
                        **env,
                        **workers,
                        "DATABASE_URL": service_url(urls[service], setup.sslmode),
                        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
                    },
                    directory,
                )
            )
        try:
            wait_consumers(vhost, [rpc_queue(implementation.message_service), implementation.outcome_queue])
            wait_consumers(vhost, [implementation.work_queue], minimum=setup.instances)
            with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster:
                message_service = getattr(cluster, implementation.message_service)
                warm_up(message_service, sink, warm_ups, in_flight)
                meter = CpuMeter(
                    {
                        f"{service}_service": [p.process.pid for p in processes if p.name.startswith(service)]
                        for service in SERVICES
                    }
                )
                meter.start()
                seconds, records = send_and_wait(message_service, setup.messages, in_flight, timeout, advance)
                cpu = meter.stop()
            alive = all(process.alive() for process in processes)
            rss = {process.name: process.rss_mib() for process in processes if process.alive()}
        finally:
            for process in processes:
                process.stop()
            purge_event_queues(vhost)
        commits = committed_transactions(urls) if setup.database == "PostgreSQL" else None
    statuses = collections.Counter(record["status"] for record in records)
    keys = list(sink.keys)
    return {
        "seconds": seconds,
        "done": statuses["done"],
        "statuses": dict(statuses),
        "webhook_keys": notified(keys, records),
        "repeated_notifications": len(keys) - len(set(keys)),
        "processes_alive": alive,
        "rss_mib": rss,
        # every process's transactions, warm-up and get_message polls included: the commits a message costs
        "commits_per_message": commits / (setup.messages + warm_ups) if commits else None,
        "database_is_locked": sum(
            process.log_path.read_text(errors="replace").count("database is locked") for process in processes
        ),
        # CPU milliseconds each process group spent per message while the messages went through
        "cpu_ms_per_message": {group: 1000 * spent / setup.messages for group, spent in cpu.items()},
        "cores_busy": cpu[BUSY] / meter.wall_seconds,
        "time_to_done": sorted(time_to_done(record) for record in records if record["status"] == "done"),
    }


def median_of(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def percentile(values, share):
    return values[min(len(values) - 1, int(len(values) * share))] if values else None


def pairs(plan: list[Setup]) -> list[tuple[Setup, ...]]:
    """The setups that differ only in implementation, together: the project's and bare's run back
    to back, so that their ratio compares runs a few seconds apart (a setup with no bare twin, the
    SQLite and TLS rows, is a pair of one)."""
    groups: dict = {}
    for setup in plan:
        groups.setdefault(replace(setup, implementation="bare"), []).append(setup)
    return [tuple(group) for group in groups.values()]


def rounds_of(setup: Setup, args) -> int:
    """The scale-out rows' runs are long and steady: fewer rounds than the cost rows'."""
    return args.scale_rounds if setup.webhook_delay else args.pipeline_rounds


def paired_versus_bare(runs, setup: Setup) -> list[float]:
    """Each round's messages/s of `setup` over its bare twin's in the same round (both complete)."""
    bare = replace(setup, implementation="bare")
    rates = collections.defaultdict(dict)
    for run in runs:
        if run["done"] == run["messages"]:
            rates[run["round"]][run["setup"]] = run["messages_per_s"]
    return [
        rate[setup.label] / rate[bare.label]
        for rate in rates.values()
        if setup.label in rate and bare.label in rate
    ]


def measure_pipeline(amqp_uri, vhost, args, log_dir, progress) -> dict:
    drop_leftover_databases()
    load_before = os.getloadavg()
    measured_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    plan = setups(args.messages, args.scale_messages, args.webhook_delay_ms / 1000, args.scale_workers)
    twins = pairs(plan)
    total = sum(rounds_of(setup, args) * setup.messages for setup in plan)
    task = progress.add_task("pipeline", total=total)
    last_round = max(args.pipeline_rounds, args.scale_rounds)
    sink = WebhookSink()
    runs, time_to_done_by_setup = [], {setup.label: [] for setup in plan}
    try:
        with s3_server(log_dir) as (s3_endpoint, s3_kind):
            for round_number in range(1, last_round + 1):
                this_round = [pair for pair in twins if round_number <= rounds_of(pair[0], args)]
                # pairs in a balanced order (bench/order.py); within a pair, who goes first alternates
                order = [
                    setup
                    for pair in round_order(this_round, round_number - 1)
                    for setup in (pair if round_number % 2 else reversed(pair))
                ]
                for position, setup in enumerate(order, 1):
                    progress.update(
                        task,
                        description=f"pipeline round {round_number}/{last_round}: {setup.label}",
                    )
                    run = run_once(
                        setup,
                        amqp_uri,
                        vhost,
                        args.in_flight,
                        args.pipeline_timeout,
                        log_dir,
                        sink,
                        s3_endpoint,
                        lambda: progress.advance(task),
                    )
                    latencies = run.pop("time_to_done")
                    time_to_done_by_setup[setup.label] += latencies
                    runs.append(
                        {
                            "round": round_number,
                            "position": position,
                            "setup": setup.label,
                            "messages": setup.messages,
                            **run,
                            "messages_per_s": run["done"] / run["seconds"],
                        }
                    )
    finally:
        sink.close()
    summary = {}
    for setup in plan:
        complete = [run for run in runs if run["setup"] == setup.label and run["done"] == setup.messages]
        latencies = sorted(time_to_done_by_setup[setup.label])
        ratios = paired_versus_bare(runs, setup) if setup.implementation != "bare" else []
        summary[setup.label] = {
            **setup.__dict__,
            "rounds": rounds_of(setup, args),
            "complete_rounds": len(complete),
            "median_seconds": statistics.median(r["seconds"] for r in complete) if complete else None,
            "median_messages_per_s": statistics.median(r["messages_per_s"] for r in complete)
            if complete
            else None,
            # paired, as the RPC rows: the median of each round's ratio to bare's run beside it
            "vs_bare": statistics.median(ratios) if ratios else None,
            "vs_bare_quartiles": quartiles(ratios),
            "time_to_done_p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
            "time_to_done_p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None,
            "commits_per_message": median_of(r.get("commits_per_message") for r in complete),
            "cpu_ms_per_message": {
                group: median_of(r["cpu_ms_per_message"].get(group) for r in complete)
                for group in (complete[0]["cpu_ms_per_message"] if complete else {})
            },
            "cores_busy": median_of(r.get("cores_busy") for r in complete),
        }
    return {
        "settings": {
            "rounds": args.pipeline_rounds,
            "scale_rounds": args.scale_rounds,
            "messages": args.messages,
            "scale_messages": args.scale_messages,
            "webhook_delay_ms": args.webhook_delay_ms,
            "scale_workers": args.scale_workers,
            "in_flight": args.in_flight,
            "warm_up_per_worker": WARM_UP_PER_WORKER,
            "postgres_sslmode": POSTGRES_SSLMODE,
            "timeout_s": args.pipeline_timeout,
            "s3": s3_kind,
        },
        "measured_at": measured_at,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "summary": summary,
        "rounds": runs,
    }


def number(value, digits=0):
    return "-" if value is None else f"{value:.{digits}f}"


SETUP_KEYS = ("implementation", "database", "sslmode", "instances", "webhook_delay")


def counterpart(summary, setup, **differing) -> dict | None:
    """The row that is `setup` but for `differing`: bare's (implementation="bare"), plain's (sslmode=None)."""
    wanted = {key: differing.get(key, setup.get(key)) for key in SETUP_KEYS}
    return next((s for s in summary.values() if all(s.get(k) == v for k, v in wanted.items())), None)


def bare_counterpart(summary, setup) -> dict | None:
    return counterpart(summary, setup, implementation="bare")


def versus_bare(summary, setup) -> float | None:
    """The project's messages/s against bare's: paired per round where the run recorded it, else
    (runs before pairing) the ratio of the two medians; None without a bare twin."""
    if setup.get("vs_bare") is not None:
        return setup["vs_bare"]
    bare = bare_counterpart(summary, setup)
    if bare and setup["median_messages_per_s"] and bare["median_messages_per_s"]:
        return setup["median_messages_per_s"] / bare["median_messages_per_s"]
    return None


def scale_out(summary) -> dict:
    """Per implementation: instances -> (messages/s, efficiency = rate / (instances x rate with 1))."""
    curves = {}
    for setup in summary.values():
        if setup["webhook_delay"] and setup["median_messages_per_s"]:
            curves.setdefault(setup["implementation"], {})[setup["instances"]] = setup[
                "median_messages_per_s"
            ]
    return {
        implementation: {
            instances: (rate, rate / (instances * curve[1]) if 1 in curve else None)
            for instances, rate in sorted(curve.items())
        }
        for implementation, curve in curves.items()
    }


def plot_scale_out(pipeline, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = scale_out(pipeline["summary"])
    if not curves:
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    for implementation, curve in curves.items():
        instances = list(curve)
        axes.plot(instances, [curve[n][0] for n in instances], marker="o", label=f"{implementation} pipeline")
        if 1 in curve:
            axes.plot(instances, [n * curve[1][0] for n in instances], linestyle=":", color="grey")
    axes.set_xlabel("time_consuming instances")
    axes.set_ylabel("messages/s, intake to done (median)")
    axes.set_xticks(sorted({n for curve in curves.values() for n in curve}))
    axes.set_title(
        f"Pipeline scale-out, PostgreSQL, webhook {pipeline['settings']['webhook_delay_ms']:.0f} ms"
    )
    axes.legend(title="dotted: linear from 1 instance")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def report_pipeline(pipeline, floors=None) -> list[str]:
    settings, summary = pipeline["settings"], pipeline["summary"]
    rounds = settings["rounds"]
    lines = [
        "",
        "## Pipeline: the project against bare Nameko",
        "",
        "| setup | complete rounds | messages/s | vs bare | time-to-done p50 ms | p99 ms "
        "| PostgreSQL commits per message |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in summary.items():
        if s["webhook_delay"]:
            continue
        ratio = versus_bare(summary, s)  # a bare row is its own twin: 1.00x
        versus = "-" if ratio is None else with_spread(ratio, s.get("vs_bare_quartiles"))
        lines.append(
            f"| {label} | {s['complete_rounds']}/{s.get('rounds', rounds)} "
            f"| {number(s['median_messages_per_s'], 1)} | {versus} "
            f"| {number(s['time_to_done_p50_ms'])} | {number(s['time_to_done_p99_ms'])} "
            f"| {number(s.get('commits_per_message'), 1)} |"
        )
    lines += [
        "",
        f"{settings['messages']} messages with payloads per run, {settings['in_flight']} `receive_message` "
        f"calls in flight, after warm-up messages sent as the measured ones, "
        f"{settings['warm_up_per_worker']} per time_consuming worker (at least {settings['in_flight']}), "
        "every one through to the webhook; PostgreSQL with "
        f"`sslmode={settings.get('postgres_sslmode', 'prefer')}` for both pipelines; every run with fresh "
        "databases, its services as "
        f"`nameko run` processes, S3: {settings['s3']}, a webhook on loopback answering at once. "
        "messages/s: from the first call until every message is `done`; time-to-done: message_service's "
        "`created_at` to `updated_at`, all rounds pooled. "
        + (
            "The project's run and bare's of the same setup run back to back, who goes first alternating "
            "by round; vs bare: the median over rounds of each round's ratio, in brackets the quartiles "
            "of those ratios (half the rounds lie between). "
            if "scale_rounds" in settings  # runs before pairing: the ratio of the two medians
            else "vs bare: the ratio of the two medians. "
        )
        + "Bare: bench/bare_pipeline.py (no outbox, no "
        "idempotency, no retries). Commits per message: PostgreSQL's `xact_commit` over the run's "
        "databases (every process's transactions, the warm-up and `get_message` polls included) per "
        "message. Targets: PostgreSQL at 0.7x of bare or better, 100 messages/s or more "
        "with 2 time_consuming instances.",
        *report_tls(summary),
        *report_cpu(summary),
        "",
        f"## Pipeline scale-out: webhook answering in {settings['webhook_delay_ms']:.0f} ms (I/O-bound)",
        "",
        "| pipeline | time_consuming instances | messages/s | speed-up | efficiency | time-to-done p50 ms "
        "| p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    curves = scale_out(summary)
    for s in summary.values():
        if not s["webhook_delay"]:
            continue
        rate, efficiency = curves.get(s["implementation"], {}).get(s["instances"], (None, None))
        speed_up = "-" if efficiency is None else f"{efficiency * s['instances']:.2f}x"
        lines.append(
            f"| {s['implementation']} | {s['instances']} | {number(rate, 1)} | {speed_up} "
            f"| {'-' if efficiency is None else f'{100 * efficiency:.0f}%'} "
            f"| {number(s['time_to_done_p50_ms'])} | {number(s['time_to_done_p99_ms'])} |"
        )
    workers = settings.get("scale_workers", 10)  # runs before the setting: nameko's default
    lines += [
        "",
        f"{settings['scale_messages']} messages per run, PostgreSQL; each time_consuming instance is a "
        f"`nameko run` process of {workers} workers (`MAX_WORKERS`), each worker waiting "
        f"on the webhook for {settings['webhook_delay_ms']:.0f} ms: one instance can finish at most "
        f"{1000 * workers / settings['webhook_delay_ms']:g} messages/s, four "
        f"{4000 * workers / settings['webhook_delay_ms']:g}, below what the pipeline "
        "reaches on this machine with no webhook latency (the cost rows above), so the instances are the "
        "bottleneck and the curve shows how they scale, not the machine's two cores. Efficiency: "
        "messages/s over instances times the 1-instance rate (target: 85% or more at 4 instances).",
        "",
        # relative to bench/ and to docs/ alike: results.md is included in docs/benchmarks.md
        f"![pipeline scale-out](../bench/{PLOT})",
    ]
    if floors:
        lines += [
            "",
            "## Floors on this machine",
            "",
            "| operation, sequential, one connection | per second |",
            "|---|---:|",
            f"| PostgreSQL INSERT + COMMIT | {floors['postgresql_insert_commits_per_s']:.0f} |",
            "| RabbitMQ persistent publish, confirmed "
            f"| {floors['confirmed_persistent_publishes_per_s']:.0f} |",
            "",
            f"Medians over {rounds} rounds of {floors['count']} each, interleaved with nothing else: "
            "a bound on what one worker's commit or confirmed event costs (bench/floors.py).",
        ]
    lines += [
        "",
        f"Run at {pipeline['measured_at']}, load average (1 min) {pipeline['load_average']['before']:.1f} "
        f"before, {pipeline['load_average']['after']:.1f} after: ratios are final only from a quiet machine.",
        "",
        "## Pipeline rounds",
        "",
        "| round | setup | order | s to all done | done | distinct webhook keys | repeated notifications "
        "| processes alive | `database is locked` |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for run in pipeline["rounds"]:
        lines.append(
            f"| {run['round']} | {run['setup']} | {run['position']} "
            f"| {run['seconds']:.2f}{'' if run['done'] == run['messages'] else ' (cut: timeout)'} "
            f"| {run['done']}/{run['messages']} | {run['webhook_keys']} "
            f"| {run['repeated_notifications']} "
            f"| {'yes' if run['processes_alive'] else 'NO'} | {run['database_is_locked']} |"
        )
    return lines


def report_tls(summary) -> list[str]:
    """Each setup over TLS beside the same setup in plain: what encrypting every query costs."""
    lines = []
    for s in summary.values():
        plain = counterpart(summary, s, sslmode=None) if s.get("sslmode") else None
        if not plain or not s["median_messages_per_s"] or not plain["median_messages_per_s"]:
            continue
        cpu, plain_cpu = s["cpu_ms_per_message"][BUSY], plain["cpu_ms_per_message"][BUSY]
        lines.append(
            f"TLS to PostgreSQL, {s['implementation']} with {s['instances']} time_consuming instances: "
            f"`sslmode={s['sslmode']}` {s['median_messages_per_s']:.1f} messages/s against "
            f"{plain['median_messages_per_s']:.1f} in plain "
            f"({s['median_messages_per_s'] / plain['median_messages_per_s']:.2f}x), the whole machine's "
            f"CPU per message {cpu:.1f} ms against {plain_cpu:.1f} ms ({100 * (cpu / plain_cpu - 1):+.0f}%)."
        )
    return ["", *lines] if lines else []


def report_cpu(summary) -> list[str]:
    """CPU per message by process group, the cost rows side by side (bench/cpu.py)."""
    rows = [s for s in summary.values() if not s["webhook_delay"] and s.get("cpu_ms_per_message")]
    if not rows:
        return []
    groups = [group for group in rows[0]["cpu_ms_per_message"] if group != BUSY]
    columns = [
        f"{s['implementation']}, {s['database']}{' TLS' if s.get('sslmode') else ''}, {s['instances']} tc"
        for s in rows
    ]
    lines = [
        "",
        "### Where the pipeline's CPU goes",
        "",
        "| CPU ms per message | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for group in groups:
        lines.append(
            f"| {group} | " + " | ".join(number(s["cpu_ms_per_message"][group], 2) for s in rows) + " |"
        )
    lines += [
        "| sum of the above | "
        + " | ".join(number(sum(s["cpu_ms_per_message"][g] or 0 for g in groups), 2) for s in rows)
        + " |",
        f"| {BUSY} | " + " | ".join(number(s["cpu_ms_per_message"][BUSY], 2) for s in rows) + " |",
        "| cores busy on average (of "
        f"{os.cpu_count()}) | " + " | ".join(number(s.get("cores_busy"), 2) for s in rows) + " |",
        "",
        "Each process's user + system CPU time (the kernel's counters, via psutil) from the first "
        "`receive_message` until the last message is `done`, over the run's messages; medians over "
        "complete rounds. tc: time_consuming instances, together in one row. The whole machine's busy "
        "time over the same window covers everything else as well (the kernel, other processes).",
    ]
    return lines
