"""`make bench`: the project's RPC and events against bare Nameko and raw kombu, in one run, one broker.

Every target runs as its own process against the same RabbitMQ (a vhost of its own, removed after):
  project:  sender_service -> receiver_service, and receiver_service directly (`nameko run`, as deployed)
  baseline: a bare Nameko `@rpc` echo service; a raw kombu request/reply loop (no framework), as
            light as AMQP allows and as nameko publishes (persistent, confirmed)
Each is called from this process: sequentially (latency p50/p99, calls/s) and pipelined (100 calls
in flight, calls/s). Within a round the targets take turns of a few calls, so drift hits every
target alike; rounds change the order (bench/order.py); figures are medians.
Events: one `dispatch_many(n)` to a relay, timed until the sink has handled all n.
Memory: each process's RSS after the warm-up.
Pipeline (bench/pipeline.py): the message flow on the embedded SQLite default beside PostgreSQL.
`--only rpc|pipeline` runs one part and keeps the other's last figures.
Results: bench/results.json and bench/results.md.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kombu import Connection, Consumer, Producer, Queue
from nameko.constants import PERSISTENT
from nameko.standalone.rpc import ClusterRpcProxy
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench import kombu_echo
from bench.floors import measure_floors
from bench.memory import measure_imports, report_memory
from bench.order import round_order
from bench.otlp_sink import exports_seen, start_sink
from bench.pipeline import PLOT, measure_pipeline, plot_scale_out, report_pipeline
from bench.processes import ROOT, Process, nameko_run, wait_consumers
from bench.profile import profiled, py_spy_works, report_profile
from bench.providers import measure_providers, report_providers
from bench.stats import paired_ratios, quartiles, with_spread
from bench.targets import BARE_DISPATCHER, events_versus_nameko, report_targets, versus_baseline
from common.topology import rpc_queue
from testkit.rabbit import RabbitAdmin

AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
PAYLOAD = {"message": "Hello World!!"}
console = Console(width=None if sys.stdout.isatty() else 150)
PARTS = ("rpc", "pipeline", "imports", "profile")


def same_payload():
    return PAYLOAD


def payload_with_id():
    """An event with an `id`: the receiver records its receipt (one INSERT and commit per call)."""
    return {"id": uuid.uuid4().hex, **PAYLOAD}


class NamekoTarget:
    def __init__(self, label, service, method, amqp_uri, baseline=None, payload=same_payload):
        self.label, self.service, self.method, self.baseline = label, service, method, baseline
        self.payload = payload
        self.proxy_context = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30)
        self.proxy = getattr(getattr(self.proxy_context.start(), service), method)

    def call(self):
        return self.proxy(self.payload())

    def pipelined(self, count, window=100):
        for start in range(0, count, window):
            replies = [self.proxy.call_async(self.payload()) for _ in range(min(window, count - start))]
            for reply in replies:
                reply.result()

    def close(self):
        self.proxy_context.stop()


KOMBU = "raw kombu request/reply"
KOMBU_CONFIRMED = "raw kombu request/reply, as nameko publishes (persistent, confirmed)"


class KombuTarget:
    """A minimal request/reply client: one exclusive reply queue, correlation ids. `confirmed`:
    requests as nameko sends them, persistent and confirmed, to the echo that replies alike."""

    baseline = "bare nameko @rpc echo"

    def __init__(self, amqp_uri, confirmed=False):
        self.label = KOMBU_CONFIRMED if confirmed else KOMBU
        self.request_queue = kombu_echo.CONFIRMED_QUEUE if confirmed else kombu_echo.QUEUE
        self.delivery_mode = PERSISTENT if confirmed else None
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": confirmed})
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
            delivery_mode=self.delivery_mode,
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


SEQUENTIAL_TURN = 10  # sequential calls a target makes before the next target's turn
PIPELINED_TURN = 100  # pipelined calls (one window in flight) likewise


def take_turns(order, total, turn, work, clock=time.perf_counter) -> dict:
    """`work(target, n)` until each target has done `total`, `turn` at a time, the targets taking
    turns in `order`; each target's seconds. Turns of a few milliseconds each, so that a slow
    stretch of the shared machine falls on every target alike, not on whichever ran through it."""
    spent = dict.fromkeys(order, 0.0)
    for done in range(0, total, turn):
        for target in order:
            started = clock()
            work(target, min(turn, total - done))
            spent[target] += clock() - started
    return spent


def measure_rpc(targets, rounds, sequential, pipelined, progress, clock=time.perf_counter):
    results = {t.label: {"latencies": [], "sequential": [], "pipelined": []} for t in targets}
    task = progress.add_task("RPC round trips", total=rounds * len(targets))

    def calls(target, count):
        latencies = results[target.label]["latencies"]
        for _ in range(count):
            call_started = clock()
            target.call()
            latencies.append(clock() - call_started)

    for round_number in range(rounds):
        order = round_order(targets, round_number)  # balanced: bench/order.py
        for target in order:
            for _ in range(20):  # warm-up
                target.call()
        seconds = take_turns(order, sequential, SEQUENTIAL_TURN, calls, clock)
        for target in order:
            results[target.label]["sequential"].append(sequential / seconds[target])
        seconds = take_turns(order, pipelined, PIPELINED_TURN, lambda t, n: t.pipelined(n, n), clock)
        for target in order:
            results[target.label]["pipelined"].append(pipelined / seconds[target])
        progress.advance(task, len(targets))
    summary = {}
    for target in targets:
        result, latencies = results[target.label], sorted(results[target.label]["latencies"])
        base = results[target.baseline or target.label]
        # paired: each round's rate over the baseline's in the same round, the median of those,
        # so a slow stretch of the machine weighs on both sides of a ratio, not on one
        ratios = {kind: paired_ratios(result[kind], base[kind]) for kind in ("sequential", "pipelined")}
        summary[target.label] = {
            "sequential_calls_per_s": statistics.median(result["sequential"]),
            "pipelined_calls_per_s": statistics.median(result["pipelined"]),
            **{f"{kind}_vs_baseline": statistics.median(values) for kind, values in ratios.items()},
            # how far a round's ratio strays: the middle half of the rounds lies between these
            **{f"{kind}_vs_baseline_quartiles": quartiles(values) for kind, values in ratios.items()},
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "baseline": target.baseline,
        }
    return summary


def measure_events(amqp_uri, rounds, count, progress):
    relays = {
        BARE_DISPATCHER: "bare_relay",
        "project EventDispatcher (common.messaging)": "project_relay",
    }
    rates = {label: [] for label in relays}
    task = progress.add_task("events dispatch -> handle", total=rounds * len(relays))
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster:
        for round_number in range(rounds):
            for label in round_order(list(relays), round_number):  # alternating: bench/order.py
                relay = relays[label]
                before = cluster.event_sink.count(relay)
                started = time.perf_counter()
                getattr(cluster, relay).dispatch_many(count)
                while cluster.event_sink.count(relay) < before + count:
                    time.sleep(0.01)
                rates[label].append(count / (time.perf_counter() - started))
                progress.advance(task)
    summary = {}
    for label, values in rates.items():
        ratios = paired_ratios(values, rates[BARE_DISPATCHER])
        summary[label] = {
            "events_per_s": statistics.median(values),
            "vs_nameko": statistics.median(ratios),  # paired, as the RPC rows' ratios
            "vs_nameko_quartiles": quartiles(ratios),
        }
    return summary


def report(results) -> str:
    """The results' markdown: the parts results.json holds (a part run alone keeps the others')."""
    lines = ["# Benchmark results"]
    durations = results.get("durations_s", {})
    if durations:
        lines += [
            "",
            "How long `make bench` took here: "
            + "; ".join(
                f"{'the whole run' if part == 'all' else f'--only {part}'} {seconds / 60:.0f} min"
                for part, seconds in durations.items()
            )
            + ".",
        ]
    lines += report_targets(results)
    if "rpc" in results:
        lines += report_rpc(results["rpc"], results["events"], results["settings"])
    if (
        "pipeline" in results
        and "summary" in results["pipeline"]
        and "implementation" in next(iter(results["pipeline"]["summary"].values()))
    ):
        lines += report_pipeline(results["pipeline"], results.get("floors"))
    if "profile" in results:
        lines += report_profile(results["profile"])
    if "providers" in results:
        lines += report_providers(results["providers"], results.get("rpc"))
    if "rss_mib" in results:
        lines += report_memory(
            results["rss_mib"], pipeline_rss(results.get("pipeline")), results.get("imports")
        )
    return "\n".join(lines) + "\n"


def pipeline_rss(pipeline) -> dict:
    """Each pipeline process's median RSS at the end of the runs with one time_consuming instance."""
    if not pipeline or "rounds" not in pipeline:
        return {}
    values = {}
    for run in pipeline["rounds"]:
        setup = pipeline["summary"][run["setup"]]
        if setup["instances"] != 1 or setup["webhook_delay"] or setup["database"] != "PostgreSQL":
            continue
        for process, mib in run.get("rss_mib", {}).items():
            service = "message_service" if process == "message" else "time_consuming_service"
            label = f"{service} ({setup['implementation']} pipeline, PostgreSQL)"
            values.setdefault(label, []).append(mib)
    return {label: statistics.median(mibs) for label, mibs in sorted(values.items())}


def report_rpc(rpc, events, settings) -> list[str]:
    lines = [
        "",
        f"`make bench` on {os.cpu_count()} cores, {settings['rounds']} rounds, medians; "
        f"{settings['sequential']} sequential + {settings['pipelined']} pipelined (100 in flight) calls"
        f" per target and round, {turns(settings)}. vs baseline: the median over rounds of each round's "
        "ratio to the baseline's rate in that round, and in brackets the quartiles of those ratios "
        "(half the rounds lie between).",
        "",
        "## RPC round trip",
        "",
        "| target | sequential calls/s | vs baseline | pipelined calls/s | vs baseline "
        "| p50 ms | p99 ms | baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, r in rpc.items():
        cells = []
        for kind in ("sequential", "pipelined"):
            spread = r.get(f"{kind}_vs_baseline_quartiles") if r["baseline"] else None  # a baseline: 1.00x
            versus = with_spread(versus_baseline(rpc, label, kind), spread)
            cells.append(f"{r[f'{kind}_calls_per_s']:.0f} | {versus}")
        lines.append(
            f"| {label} | {' | '.join(cells)} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['baseline'] or '-'} |"
        )
    lines += [
        "",
        "## Events, dispatch -> handle",
        "",
        "| dispatcher | events/s | vs nameko |",
        "|---|---:|---:|",
    ]
    for label, e in events.items():
        spread = e.get("vs_nameko_quartiles") if label != BARE_DISPATCHER else None
        versus = with_spread(events_versus_nameko(events, label), spread)
        lines.append(f"| {label} | {e['events_per_s']:.0f} | {versus} |")
    lines += [
        "",
        "Events: one `dispatch_many(n)` to a relay, timed until the sink has handled all n; the two "
        "relays' order alternates. The receipt row sends events with an `id`, so the receiver "
        "records each (one INSERT and COMMIT, SQLite), against bare nameko writing the same row with "
        "SQLAlchemy's defaults (bench/services.py `ReceiptEcho`, whose own row shows what the write "
        "costs beside the echo); the tracing row is a second receiver with "
        "`OTEL_EXPORTER_OTLP_ENDPOINT` set, exporting every span to a local OTLP receiver process "
        f"({settings.get('otlp_export_requests', '?')} export requests seen), against the receiver "
        "with tracing off.",
    ]
    return lines


def turns(settings) -> str:
    """How the targets shared a round, as the run recorded it (runs before turns made each target's
    calls in one go)."""
    if "sequential_turn" not in settings:
        return "each target's calls in one go"
    return (
        f"the targets taking turns of {settings['sequential_turn']} sequential calls, then of "
        f"{settings['pipelined_turn']} pipelined, through the round"
    )


def print_table(title, markdown_rows):
    header, _, *rows = markdown_rows
    table = Table(title=title)
    for column in header.strip("|").split("|"):
        table.add_column(column.strip())
    for row in rows:
        table.add_row(*(cell.strip() for cell in row.strip("|").split("|")))
    console.print(table)


def measure_rpc_part(amqp_uri, vhost, args, log_dir) -> dict:
    """The project's RPC and events against the baselines, and every process's memory.

    The traced receiver is a second `receiver_service` (tracing on, exporting over OTLP to a local
    receiver process), so it runs on a vhost of its own: it must not share the first one's queue.
    """
    env = {
        "AMQP_URI": amqp_uri,
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{log_dir}/receiver.sqlite3",
    }
    processes = {}
    targets = []
    with contextlib.ExitStack() as cleanup:
        traced = cleanup.enter_context(RabbitAdmin().scratch_vhost(AMQP_URI, "bench_traced"))
        cleanup.callback(lambda: [process.stop() for process in processes.values()])
        cleanup.callback(lambda: [target.close() for target in targets])
        with console.status("starting the services under test"):
            processes["OTLP receiver"], otlp_endpoint = start_sink(log_dir)
            processes["receiver_service"] = nameko_run(
                "receiver", "services/receiver/config.yaml", "receiver.service", env, log_dir
            )
            processes["receiver_service, traced"] = nameko_run(
                "receiver-traced",
                "services/receiver/config.yaml",
                "receiver.service",
                {
                    **env,
                    "AMQP_URI": traced.amqp_uri,
                    "DATABASE_URL": f"sqlite:///{log_dir}/receiver-traced.sqlite3",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
                },
                log_dir,
            )
            processes["sender_service"] = nameko_run(
                "sender", "services/sender/config.yaml", "sender.service", env, log_dir
            )
            processes["bare nameko echo"] = nameko_run(
                "echo", "bench/config.yaml", "bench.services:EchoService", env, log_dir
            )
            processes["bare nameko echo writing a receipt"] = nameko_run(
                "receipt-echo",
                "bench/config.yaml",
                "bench.services:ReceiptEcho",
                {**env, "RECEIPT_ECHO_DATABASE_URL": f"sqlite:///{log_dir}/receipt-echo.sqlite3"},
                log_dir,
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
            processes["raw kombu echo, confirmed"] = Process(
                "kombu-confirmed",
                [sys.executable, "-m", "bench.kombu_echo", amqp_uri, "--confirmed"],
                env,
                log_dir,
            )
            wait_consumers(
                vhost,
                [
                    rpc_queue("receiver_service"),
                    rpc_queue("sender_service"),
                    rpc_queue("echo_service"),
                    rpc_queue("receipt_echo"),
                    rpc_queue("event_sink"),
                    rpc_queue("bare_relay"),
                    rpc_queue("project_relay"),
                    rpc_queue("echo_relay"),
                    kombu_echo.QUEUE,
                    kombu_echo.CONFIRMED_QUEUE,
                ],
            )
            wait_consumers(traced.name, [rpc_queue("receiver_service")])
            bare, relay = "bare nameko @rpc echo", "bare nameko RpcProxy relay -> echo"
            bare_receipt = "bare nameko @rpc echo writing the receipt (SQLite)"
            receiver = "receiver directly (project)"
            targets = [
                NamekoTarget("sender -> receiver (project)", "sender_service", "send_event", amqp_uri, relay),
                NamekoTarget(receiver, "receiver_service", "receive_event", amqp_uri, bare),
                NamekoTarget(
                    "receiver, event with id: receipt written (project)",
                    "receiver_service",
                    "receive_event",
                    amqp_uri,
                    bare_receipt,
                    payload=payload_with_id,
                ),
                NamekoTarget(
                    "receiver, tracing on, OTLP export (project)",
                    "receiver_service",
                    "receive_event",
                    traced.amqp_uri,
                    receiver,
                ),
                NamekoTarget(relay, "echo_relay", "relay", amqp_uri),
                NamekoTarget(bare, "echo_service", "echo", amqp_uri),
                NamekoTarget(
                    bare_receipt, "receipt_echo", "receive_event", amqp_uri, bare, payload=payload_with_id
                ),
                KombuTarget(amqp_uri),
                KombuTarget(amqp_uri, confirmed=True),
            ]
        with Progress(console=console) as progress:
            rpc = measure_rpc(targets, args.rounds, args.sequential, args.pipelined, progress)
            events = measure_events(amqp_uri, args.rounds, args.events, progress)
        memory = {name: process.rss_mib() for name, process in processes.items()}
        # The traced row is only a tracing row if spans were exported (the batch exporter's delay).
        spans_exported = exports_seen(otlp_endpoint)
    settings = {
        "rounds": args.rounds,
        "sequential": args.sequential,
        "pipelined": args.pipelined,
        "sequential_turn": SEQUENTIAL_TURN,
        "pipelined_turn": PIPELINED_TURN,
        "events": args.events,
        "otlp_export_requests": spans_exported,
    }
    return {"settings": settings, "rpc": rpc, "events": events, "rss_mib": memory}


def measure_profile_part(amqp_uri, vhost, args, log_dir) -> dict:
    """The receiver and the bare echo, each under py-spy while it takes pipelined calls."""
    env = {
        "AMQP_URI": amqp_uri,
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{log_dir}/receiver-profiled.sqlite3",
    }
    sides = {
        "receiver, events with ids": (
            ["--config", "services/receiver/config.yaml", "receiver.service"],
            "receiver_service",
            "receive_event",
            payload_with_id,
        ),
        "bare nameko echo": (
            ["--config", "bench/config.yaml", "bench.services:EchoService"],
            "echo_service",
            "echo",
            same_payload,
        ),
    }
    targets = {}
    with Progress(console=console) as progress:
        task = progress.add_task("profiles (py-spy)", total=len(sides))
        for label, (argv, service, method, payload) in sides.items():

            def load(seconds, label=label, service=service, method=method, payload=payload):
                target = NamekoTarget(label, service, method, amqp_uri, payload=payload)
                try:
                    target.pipelined(100)  # warm-up, not counted
                    calls, deadline = 0, time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        target.pipelined(100)
                        calls += 100
                    return calls
                finally:
                    target.close()

            name = service.removesuffix("_service")
            targets[label] = profiled(
                name, argv, env, log_dir, vhost, rpc_queue(service), load, args.profile_seconds
            )
            progress.advance(task)
    return {"seconds": args.profile_seconds, "targets": targets}


def measure(args, results):
    """Runs the parts asked for into `results`."""
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    started = time.monotonic()
    with RabbitAdmin().scratch_vhost(AMQP_URI, "bench") as scratch:
        amqp_uri, vhost = scratch.amqp_uri, scratch.name
        if args.only in (None, "rpc"):
            results.update(measure_rpc_part(amqp_uri, vhost, args, log_dir))
        if args.only in (None, "pipeline"):
            with Progress(console=console) as progress:
                results["floors"] = measure_floors(
                    amqp_uri, args.pipeline_rounds, args.floor_count, log_dir, progress
                )
                results["pipeline"] = measure_pipeline(amqp_uri, vhost, args, log_dir, progress)
        if args.only in (None, "profile"):
            results["providers"] = measure_providers(args.rounds, log_dir)
            if py_spy_works():
                results["profile"] = measure_profile_part(amqp_uri, vhost, args, log_dir)
            else:
                console.print("profile: skipped, py-spy does not run here")
        if args.only in (None, "imports"):
            with Progress(console=console) as progress:
                results["imports"] = measure_imports(args.pipeline_rounds, progress)
    results.setdefault("durations_s", {})[args.only or "all"] = round(time.monotonic() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=PARTS,
        help="run one part (rpc: RPC round trips, events, memory; pipeline: the pipeline and the floors; "
        "imports: import costs; profile: py-spy of the receiver and the echo, each provider's cost per "
        "worker); the other parts' last results are kept",
    )
    # 15 rounds of 500 sequential calls: with 11 of 200, half a second per round, one run's median
    # moved by about +-0.07 from the next (docs/benchmarks.md, reading the RPC figures)
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the RPC and event figures")
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--pipelined", type=int, default=600)
    parser.add_argument("--events", type=int, default=1000)
    # 5 rounds of 300 messages, the project's and bare's runs back to back: with 3 of 200, in a
    # balanced order of all twelve setups, one run's project-vs-bare ratio moved from 0.63x to 0.80x
    parser.add_argument("--pipeline-rounds", type=int, default=5, help="rounds of the pipeline's cost rows")
    parser.add_argument("--scale-rounds", type=int, default=2, help="rounds of the scale-out rows")
    parser.add_argument("--messages", type=int, default=300, help="messages per pipeline run (cost rows)")
    parser.add_argument("--scale-messages", type=int, default=80, help="messages per scale-out run")
    parser.add_argument(
        "--scale-workers", type=int, default=2, help="each time_consuming instance's workers (scale-out rows)"
    )
    parser.add_argument(
        "--webhook-delay-ms", type=float, default=1000, help="the webhook's latency in the scale-out rows"
    )
    parser.add_argument("--in-flight", type=int, default=20, help="pipeline calls in flight")
    parser.add_argument(
        "--pipeline-timeout", type=float, default=180, help="seconds a pipeline run may take before it is cut"
    )
    parser.add_argument("--floor-count", type=int, default=500, help="operations per floor measurement")
    parser.add_argument(
        "--profile-seconds", type=int, default=15, help="seconds of load per profiled process"
    )
    parser.add_argument(
        "--report", action="store_true", help="measure nothing: results.md and the plot from results.json"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)

    previous = args.output / "results.json"
    results = json.loads(previous.read_text()) if previous.exists() else {}
    started = time.monotonic()
    if not args.report:
        measure(args, results)
    markdown = report(results)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.md").write_text(markdown)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    written = [args.output / "results.md", args.output / "results.json"]
    if "pipeline" in results and plot_scale_out(results["pipeline"], args.output / PLOT):
        written.append(args.output / PLOT)
    for section in markdown.split("\n## ")[1:]:
        title, *lines = section.strip().splitlines()
        print_table(title, [line for line in lines if line.startswith("|")])
        for line in lines:
            if line and not line.startswith("|"):
                console.print(line)
    console.print(f"{round(time.monotonic() - started)} s; written: {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
