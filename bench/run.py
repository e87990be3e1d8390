"""`make bench`: the project's RPC and events against bare Nameko and raw kombu, in one run, one broker.

Every target runs as its own process against the same RabbitMQ (a vhost of its own, removed after):
  project:  sender_service -> receiver_service, and receiver_service directly (`nameko run`, as deployed)
  baseline: a bare Nameko `@rpc` echo service; a raw kombu request/reply loop (no framework)
Each is called from this process: sequentially (latency p50/p99, calls/s) and pipelined (100 calls
in flight, calls/s). Rounds are interleaved so drift hits every target alike; figures are medians.
Events: one `dispatch_many(n)` to a relay, timed until the sink has handled all n.
Memory: each process's RSS after the warm-up.
Pipeline (bench/pipeline.py): the message flow on the embedded SQLite default beside PostgreSQL.
`--only rpc|pipeline` runs one part and keeps the other's last figures.
Results: bench/results.json and bench/results.md.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kombu import Connection, Consumer, Producer, Queue
from nameko.standalone.rpc import ClusterRpcProxy
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.pipeline import measure_pipeline, report_pipeline
from bench.processes import ROOT, Process, nameko_run, wait_consumers
from testkit.rabbit import RabbitAdmin

AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
PAYLOAD = {"message": "Hello World!!"}
console = Console(width=None if sys.stdout.isatty() else 150)


class NamekoTarget:
    def __init__(self, label, service, method, amqp_uri, baseline=None):
        self.label, self.service, self.method, self.baseline = label, service, method, baseline
        self.proxy_context = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30)
        self.proxy = getattr(getattr(self.proxy_context.start(), service), method)

    def call(self):
        return self.proxy(PAYLOAD)

    def pipelined(self, count, window=100):
        for start in range(0, count, window):
            replies = [self.proxy.call_async(PAYLOAD) for _ in range(min(window, count - start))]
            for reply in replies:
                reply.result()

    def close(self):
        self.proxy_context.stop()


class KombuTarget:
    """A minimal request/reply client: one exclusive reply queue, correlation ids."""

    label = "raw kombu request/reply"
    baseline = "bare nameko @rpc echo"

    def __init__(self, amqp_uri):
        from bench.kombu_echo import QUEUE

        self.request_queue = QUEUE
        self.connection = Connection(amqp_uri)
        self.channel = self.connection.channel()
        self.producer = Producer(self.channel, serializer="json")
        self.reply_queue = Queue(f"bench-reply-{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
        self.pending = set()
        self.consumer = Consumer(self.channel, self.reply_queue, callbacks=[self.on_reply], no_ack=True)
        self.consumer.consume()

    def on_reply(self, body, message):
        self.pending.discard(message.properties["correlation_id"])

    def send(self):
        correlation_id = uuid.uuid4().hex
        self.pending.add(correlation_id)
        self.producer.publish(
            PAYLOAD,
            exchange="",
            routing_key=self.request_queue,
            reply_to=self.reply_queue.name,
            correlation_id=correlation_id,
        )

    def call(self):
        self.send()
        while self.pending:
            self.connection.drain_events(timeout=30)

    def pipelined(self, count, window=100):
        for start in range(0, count, window):
            for _ in range(min(window, count - start)):
                self.send()
            while self.pending:
                self.connection.drain_events(timeout=30)

    def close(self):
        self.connection.release()


def measure_rpc(targets, rounds, sequential, pipelined, progress):
    results = {t.label: {"latencies": [], "sequential": [], "pipelined": []} for t in targets}
    task = progress.add_task("RPC round trips", total=rounds * len(targets))
    for round_number in range(rounds):
        shift = round_number % len(targets)  # a different order each round: no target always goes first
        for target in targets[shift:] + targets[:shift]:
            result = results[target.label]
            for _ in range(20):  # warm-up
                target.call()
            started = time.perf_counter()
            for _ in range(sequential):
                call_started = time.perf_counter()
                target.call()
                result["latencies"].append(time.perf_counter() - call_started)
            result["sequential"].append(sequential / (time.perf_counter() - started))
            started = time.perf_counter()
            target.pipelined(pipelined)
            result["pipelined"].append(pipelined / (time.perf_counter() - started))
            progress.advance(task)
    summary = {}
    for label, result in results.items():
        latencies = sorted(result["latencies"])
        summary[label] = {
            "sequential_calls_per_s": statistics.median(result["sequential"]),
            "pipelined_calls_per_s": statistics.median(result["pipelined"]),
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "baseline": next(t.baseline for t in targets if t.label == label),
        }
    return summary


def measure_events(amqp_uri, rounds, count, progress):
    relays = {
        "nameko EventDispatcher": "bare_relay",
        "project EventDispatcher (common.messaging)": "project_relay",
    }
    rates = {label: [] for label in relays}
    task = progress.add_task("events dispatch -> handle", total=rounds * len(relays))
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster:
        for _ in range(rounds):
            for label, relay in relays.items():
                before = cluster.event_sink.count(relay)
                started = time.perf_counter()
                getattr(cluster, relay).dispatch_many(count)
                while cluster.event_sink.count(relay) < before + count:
                    time.sleep(0.01)
                rates[label].append(count / (time.perf_counter() - started))
                progress.advance(task)
    return {label: {"events_per_s": statistics.median(values)} for label, values in rates.items()}


def ratio(value, baseline):
    return f"{value / baseline:.2f}x"


def report(results) -> str:
    """The results' markdown: the parts results.json holds (a part run alone keeps the others')."""
    lines = ["# Benchmark results"]
    if "rpc" in results:
        lines += report_rpc(results["rpc"], results["events"], results["rss_mib"], results["settings"])
    if "pipeline" in results:
        lines += report_pipeline(results["pipeline"])
    return "\n".join(lines) + "\n"


def report_rpc(rpc, events, memory, settings) -> list[str]:
    lines = [
        "",
        f"`make bench` on {os.cpu_count()} cores, {settings['rounds']} interleaved rounds, medians; "
        f"{settings['sequential']} sequential + {settings['pipelined']} pipelined (100 in flight) calls"
        " per round.",
        "",
        "## RPC round trip",
        "",
        "| target | sequential calls/s | vs baseline | pipelined calls/s | vs baseline "
        "| p50 ms | p99 ms | baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, r in rpc.items():
        sequential, pipelined = r["sequential_calls_per_s"], r["pipelined_calls_per_s"]
        base = rpc[r["baseline"]] if r["baseline"] else r
        lines.append(
            f"| {label} | {sequential:.0f} | {ratio(sequential, base['sequential_calls_per_s'])} "
            f"| {pipelined:.0f} | {ratio(pipelined, base['pipelined_calls_per_s'])} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['baseline'] or '-'} |"
        )
    bare_events = events["nameko EventDispatcher"]["events_per_s"]
    lines += [
        "",
        "## Events, dispatch -> handle",
        "",
        "| dispatcher | events/s | vs nameko |",
        "|---|---:|---:|",
    ]
    for label, e in events.items():
        lines.append(f"| {label} | {e['events_per_s']:.0f} | {ratio(e['events_per_s'], bare_events)} |")
    lines += ["", "## Memory per process (RSS after warm-up)", "", "| process | RSS MiB |", "|---|---:|"]
    for name, rss in memory.items():
        lines.append(f"| {name} | {rss:.1f} |")
    return lines


def print_table(title, markdown_rows):
    header, _, *rows = markdown_rows
    table = Table(title=title)
    for column in header.strip("|").split("|"):
        table.add_column(column.strip())
    for row in rows:
        table.add_row(*(cell.strip() for cell in row.strip("|").split("|")))
    console.print(table)


def measure_rpc_part(amqp_uri, vhost, args, log_dir) -> dict:
    """The project's RPC and events against the baselines, and every process's memory."""
    env = {
        "AMQP_URI": amqp_uri,
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{log_dir}/receiver.sqlite3",
    }
    processes = {}
    targets = []
    try:
        with console.status("starting the services under test"):
            processes["receiver_service"] = nameko_run(
                "receiver", "services/receiver/config.yaml", "receiver.service", env, log_dir
            )
            processes["sender_service"] = nameko_run(
                "sender", "services/sender/config.yaml", "sender.service", env, log_dir
            )
            processes["bare nameko echo"] = nameko_run(
                "echo", "bench/config.yaml", "bench.services:EchoService", env, log_dir
            )
            processes["baseline relays + event sink"] = nameko_run(
                "events",
                "bench/config.yaml",
                "bench.services:EchoRelay bench.services:BareRelay bench.services:ProjectRelay "
                "bench.services:EventSink",
                env,
                log_dir,
            )
            processes["raw kombu echo"] = Process(
                "kombu", [sys.executable, "-m", "bench.kombu_echo", amqp_uri], env, log_dir
            )
            wait_consumers(
                vhost,
                [
                    "rpc-receiver_service",
                    "rpc-sender_service",
                    "rpc-echo_service",
                    "rpc-event_sink",
                    "rpc-bare_relay",
                    "rpc-project_relay",
                    "rpc-echo_relay",
                    "bench-kombu-echo",
                ],
            )
            bare, relay = "bare nameko @rpc echo", "bare nameko RpcProxy relay -> echo"
            targets = [
                NamekoTarget("sender -> receiver (project)", "sender_service", "send_event", amqp_uri, relay),
                NamekoTarget(
                    "receiver directly (project)", "receiver_service", "receive_event", amqp_uri, bare
                ),
                NamekoTarget(relay, "echo_relay", "relay", amqp_uri),
                NamekoTarget(bare, "echo_service", "echo", amqp_uri),
                KombuTarget(amqp_uri),
            ]
        with Progress(console=console) as progress:
            rpc = measure_rpc(targets, args.rounds, args.sequential, args.pipelined, progress)
            events = measure_events(amqp_uri, args.rounds, args.events, progress)
        memory = {name: process.rss_mib() for name, process in processes.items()}
    finally:
        for target in targets:
            target.close()
        for process in processes.values():
            process.stop()
    settings = {
        "rounds": args.rounds,
        "sequential": args.sequential,
        "pipelined": args.pipelined,
        "events": args.events,
    }
    return {"settings": settings, "rpc": rpc, "events": events, "rss_mib": memory}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=["rpc", "pipeline"],
        help="run one part (rpc: RPC round trips, events, memory); the other part's last results are kept",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--pipelined", type=int, default=600)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--pipeline-rounds", type=int, default=5, help="rounds per database")
    parser.add_argument("--messages", type=int, default=100, help="messages per pipeline run")
    parser.add_argument("--in-flight", type=int, default=20, help="pipeline calls in flight")
    parser.add_argument(
        "--pipeline-timeout", type=float, default=180, help="seconds a pipeline run may take before it is cut"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)

    previous = args.output / "results.json"
    results = json.loads(previous.read_text()) if previous.exists() else {}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    with RabbitAdmin().scratch_vhost(AMQP_URI, "bench") as scratch:
        amqp_uri, vhost = scratch.amqp_uri, scratch.name
        if args.only in (None, "rpc"):
            results.update(measure_rpc_part(amqp_uri, vhost, args, log_dir))
        if args.only in (None, "pipeline"):
            with Progress(console=console) as progress:
                results["pipeline"] = measure_pipeline(
                    amqp_uri,
                    vhost,
                    args.pipeline_rounds,
                    args.messages,
                    args.in_flight,
                    args.pipeline_timeout,
                    log_dir,
                    progress,
                )

    markdown = report(results)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.md").write_text(markdown)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for section in markdown.split("\n## ")[1:]:
        title, *lines = section.strip().splitlines()
        print_table(title, [line for line in lines if line.startswith("|")])
        for line in lines:
            if line and not line.startswith("|"):
                console.print(line)
    console.print(f"written: {args.output / 'results.md'}, {args.output / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
