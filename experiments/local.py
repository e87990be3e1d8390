"""The article's claims measured on real processes, its figures beside ours (`experiments <scenario>`).

    experiments concurrency        N concurrent calls, work S each: 10 -> ~S, 20 -> ~2S, 2 instances -> ~S
    experiments scaling            the same load on 1, 2, 3 ... receivers: throughput, efficiency, a PNG plot
    experiments fault-tolerance    3 receivers, 50 calls, two killed mid-flight (kill -9 and SIGTERM)
    experiments broker-restart     events sent while their handler is down survive a RabbitMQ restart
    experiments broker-outage      a 30 s outage while workers are mid-call costs time, not processes

Services run from docker-compose.yml through the local runner (`testkit.localstack.LocalStack`) in a vhost
of their own on the broker at AMQP_URI; the broker demos start a private RabbitMQ node
(`testkit.private_broker`) and never touch the shared one.

    experiments --backend docker [SCENARIO]   the same experiments on docker-compose.yml's containers
                                              (docker kill/stop, a broker container restart, `docker
                                              network disconnect`): experiments.containers
"""

import contextlib
import math
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.topology import rpc_queue
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE, RabbitAdmin

console = Console(width=None if sys.stdout.isatty() else 140)


# -- plumbing ------------------------------------------------------------------------------------


def shared_broker():
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    host = amqp_uri.split("@")[-1].split(":")[0].split("/")[0] or "localhost"
    management = os.environ.get("RABBIT_MANAGEMENT_URL", f"http://{host}:15672/api")
    base = amqp_uri.rsplit("/", 1)[0] if amqp_uri.count("/") > 2 else amqp_uri
    return base, management


def make_stack(args, amqp_uri, management_url, services, scale=None, env=None, log_name="demo"):
    from testkit.localstack import LocalStack

    log_dir = args.state_dir / "demo" / log_name
    stack = LocalStack(
        args.compose_file,
        services=services,
        scale=scale,
        env={"AMQP_URI": amqp_uri, "DATABASE_AUTO_MIGRATE": "true", **(env or {})},
        log_dir=log_dir,
        management_url=management_url,
    )
    # one SQLite file per run, shared by the instances of each service (the article's receipts)
    for service in stack.services:
        if "DATABASE_URL" in service.environment:
            database = log_dir / f"{service.name}-{uuid.uuid4().hex[:6]}.sqlite3"
            stack.service_env.setdefault(service.name, {})["DATABASE_URL"] = f"sqlite:///{database}"
    return stack


def private_stack(args, broker, vhost, services, env=None, log_name="demo"):
    """`make_stack` on a vhost of its own on a private broker node (the broker scenarios stop it)."""
    broker.admin.create_vhost(vhost)
    amqp_uri = broker.amqp_uri + vhost
    stack = make_stack(args, amqp_uri, f"{broker.management_url}/api", services, env=env, log_name=log_name)
    return amqp_uri, stack


def progress():
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )


def concurrent_calls(amqp_uri, count, bar, task, make_event=None, timeout=120):
    """`count` calls in flight at once from one ClusterRpcProxy; returns (replies, seconds)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    make_event = make_event or (lambda i: {"id": f"{uuid.uuid4().hex[:8]}-{i}"})
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout) as cluster:
        started = time.monotonic()
        pending = [cluster.receiver_service.receive_event.call_async(make_event(i)) for i in range(count)]
        replies = []
        for call in pending:
            replies.append(call.result())
            bar.advance(task)
        return replies, time.monotonic() - started


def table(title, columns, rows):
    result = Table(title=title)
    for index, column in enumerate(columns):
        result.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        result.add_row(*[str(cell) for cell in row])
    console.print(result)


def time_receivers(args, vhost, management_url, instances, max_workers, calls, progress_task) -> float:
    """Seconds that `calls` concurrent calls take on `instances` fresh receivers."""
    env = {"RECEIVER_WORK_SECONDS": str(args.work_seconds), "MAX_WORKERS": str(max_workers)}
    stack = make_stack(
        args, vhost.amqp_uri, management_url, ["receiver"], {"receiver": instances}, env, args.scenario
    )
    with stack:
        stack.start()
        stack.wait_ready()
        _, seconds = concurrent_calls(vhost.amqp_uri, calls, *progress_task)
    return seconds


# -- scenarios -----------------------------------------------------------------------------------


def concurrency(args):
    """The article: 10 calls with `sleep(S)` take ~S (10 workers), 20 take ~2S; 2 instances: ~S again."""
    work = args.work_seconds
    runs = [
        ("10 calls, 1 instance, max_workers=10", 10, 1, 10, work),
        ("20 calls, 1 instance, max_workers=10", 20, 1, 10, 2 * work),
        ("20 calls, 2 instances, max_workers=10", 20, 2, 10, work),
        ("5 calls, 1 instance, max_workers=1", 5, 1, 1, 5 * work),
    ]
    amqp_base, management = shared_broker()
    rows = []
    with RabbitAdmin().scratch_vhost(amqp_base, "demo") as vhost, progress() as bar:
        for label, calls, instances, max_workers, expected in runs:
            task = bar.add_task(label, total=calls)
            seconds = time_receivers(args, vhost, management, instances, max_workers, calls, (bar, task))
            rows.append((label, f"{expected:.1f} s", f"{seconds:.2f} s", f"{seconds / expected:.2f}"))
    table(
        f"Concurrency (S = {work} s of green sleep per call)",
        ["run", "article expects", "measured", "measured / expected"],
        rows,
    )


def scaling(args):
    work, calls = args.work_seconds, args.calls or 60
    amqp_base, management = shared_broker()
    results = []
    with RabbitAdmin().scratch_vhost(amqp_base, "demo") as vhost, progress() as bar:
        for instances in range(1, args.max_instances + 1):
            task = bar.add_task(f"{instances} receiver(s)", total=calls)
            seconds = time_receivers(args, vhost, management, instances, 10, calls, (bar, task))
            results.append((instances, seconds, calls / seconds))
    single = results[0][2]
    rows = [
        (
            n,
            f"{s:.2f} s",
            f"{t:.1f}",
            f"{t / single:.2f}x",
            f"{t / (n * single):.0%}",
            f"{calls * work / (10 * n):.1f} s",
        )
        for n, s, t in results
    ]
    table(
        f"Scaling: {calls} concurrent calls, S = {work} s, max_workers=10 per instance",
        ["instances", "time", "calls/s", "speed-up", "scale-out efficiency", "ideal time"],
        rows,
    )
    plot(results, calls, work, args.plot)


def plot(results, calls, work, path: Path, max_workers: int = 10, instances_are="receiver instances"):
    """Time and throughput against instances, with the ideal lines; `results` = [(instances,
    seconds, calls/s)]. Ideal: `calls` spread over `max_workers` per instance, `work` s each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    instances = [n for n, _, _ in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(instances, [s for _, s, _ in results], "o-", label="measured")
    left.plot(
        instances, [math.ceil(calls / (max_workers * n)) * work for n in instances], "--", label="ideal"
    )
    left.set(xlabel=instances_are, ylabel="seconds for all calls", title="time")
    right.plot(instances, [t for _, _, t in results], "o-", label="measured")
    right.plot(instances, [results[0][2] * n for n in instances], "--", label="linear")
    right.set(xlabel=instances_are, ylabel="calls/s", title="throughput")
    for axis in (left, right):
        axis.set_xticks(instances)
        axis.legend()
    figure.suptitle(f"{calls} concurrent calls, {work} s of work each, max_workers={max_workers}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    console.print(f"plot written: {path}")


def fault_tolerance(args):
    from kombu import Connection

    calls, receivers, stopped = (
        args.calls or 50,
        ["receiver-1", "receiver-2", "receiver-3"],
        ["receiver-2", "receiver-3"],
    )
    amqp_base, management = shared_broker()
    rows = []
    with RabbitAdmin().scratch_vhost(amqp_base, "demo") as vhost, progress() as bar:
        for how, signum in (("kill -9", signal.SIGKILL), ("SIGTERM", signal.SIGTERM)):
            task = bar.add_task(f"{calls} calls, {how} two of three receivers", total=calls)
            env = {"RECEIVER_WORK_SECONDS": str(args.work_seconds), "MAX_WORKERS": "10"}
            stack = make_stack(
                args, vhost.amqp_uri, management, ["receiver"], {"receiver": len(receivers)}, env, "ft"
            )
            with stack:
                stack.start()
                stack.wait_ready()
                from nameko.standalone.rpc import ClusterRpcProxy

                prefix = uuid.uuid4().hex[:6]
                with ClusterRpcProxy({"AMQP_URI": vhost.amqp_uri}, timeout=120) as cluster:
                    pending = [
                        cluster.receiver_service.receive_event.call_async({"id": f"{prefix}-{i}"})
                        for i in range(calls)
                    ]
                    with Connection(vhost.amqp_uri) as connection:
                        channel = connection.default_channel
                        while channel.queue_declare(
                            rpc_queue("receiver_service"), passive=True
                        ).message_count > max(calls - 30, 0):
                            time.sleep(0.02)
                    killed_at = time.monotonic()
                    for name in stopped:
                        stack.send_signal(name, signum)
                    replies = []
                    for call in pending:
                        replies.append(call.result())
                        bar.advance(task)
                    recovery = time.monotonic() - killed_at
                    receipts = cluster.receiver_service.receipt_count()
                codes = {name: stack.instances[name].process.wait(30) for name in stopped}
            ok = len(replies) == calls and receipts == calls
            rows.append(
                (
                    how,
                    f"{len(replies)}/{calls}",
                    f"{receipts}",
                    f"{recovery:.2f} s",
                    ", ".join(map(str, codes.values())),
                    "[green]no loss, no duplicate[/]" if ok else "[red]LOSS OR DUPLICATE[/]",
                )
            )
    table(
        f"Fault tolerance: 3 receivers, {calls} calls (S = {args.work_seconds} s), two stopped mid-flight",
        [
            "stopped with",
            "replies",
            "receipts (expected exactly " + str(calls) + ")",
            "last reply after stop",
            "exit codes",
            "verdict",
        ],
        rows,
    )


def broker_restart(args):
    from nameko.standalone.rpc import ClusterRpcProxy

    from common.client import BROKER_ERRORS, call_with_retry
    from testkit.private_broker import PrivateBroker

    events = args.calls or 20
    queue = HEAVY_PAYLOAD_QUEUE
    with progress() as bar:
        steps = bar.add_task("broker restart", total=7)
        with PrivateBroker() as broker:
            bar.advance(steps)
            vhost = "restart"
            amqp_uri, stack = private_stack(
                args, broker, vhost, ["message", "time_consuming"], log_name="restart"
            )
            with stack:
                stack.start()
                stack.wait_ready()
                stack.stop("time_consuming")
                bar.advance(steps)
                ids = [
                    call_with_retry(
                        amqp_uri, "message_service", "receive_message", {"message": f"m{i}", "payload": i}
                    )["id"]
                    for i in range(events)
                ]
                before = broker.queue_counts(vhost)[queue][0]
                bar.advance(steps)
                broker.stop()
                try:
                    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=5) as cluster:
                        cluster.message_service.get_message(ids[0])
                    client_sees = "a reply (unexpected)"
                except BROKER_ERRORS as error:
                    client_sees = f"{type(error).__name__}: {error}"
                started = time.monotonic()
                broker.start()
                after = broker.queue_counts(vhost)[queue][0]
                bar.advance(steps)
                while not broker.admin.consumers(vhost, rpc_queue("message_service")):
                    time.sleep(0.1)
                reconnected = time.monotonic() - started
                bar.advance(steps)
                stack.start("time_consuming")
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    statuses = [
                        call_with_retry(amqp_uri, "message_service", "get_message", i)["status"] for i in ids
                    ]
                    if set(statuses) == {"done"}:
                        break
                    time.sleep(0.2)
                bar.advance(steps)
                alive = stack.instances["message-1"].running
                bar.advance(steps)
    table(
        "Broker restart: events dispatched while their handler is down, then RabbitMQ restarted",
        ["what", "article", "measured"],
        [
            ("events waiting before the restart", "-", f"{before}/{events}"),
            ("events waiting after the restart", "all", f"{after}/{events}"),
            ("handled once the handler started", "all", f"{statuses.count('done')}/{events}"),
            (
                "message_service reconnected by itself",
                "yes",
                f"{'yes' if alive else 'NO'} ({reconnected:.1f} s after start)",
            ),
            ("a client calling while the broker is down", "-", client_sees),
        ],
    )
    console.print(
        "Set where: durable queues and exchanges (nameko.events / nameko.rpc declare them durable=True), "
        "persistent messages (nameko.amqp.publish.Publisher.delivery_mode = PERSISTENT), publisher confirms "
        "(Publisher.use_confirms = True); our publishers keep both (common/messaging.py)."
    )


def broker_outage(args):
    import eventlet

    eventlet.monkey_patch()
    from common.client import call_with_retry
    from testkit.private_broker import PrivateBroker

    calls, work, outage = args.calls or 10, max(args.work_seconds, 3.0), args.outage_seconds
    rows = []
    with progress() as bar, PrivateBroker() as broker:
        for label, env, supervised in (
            ("project policy (PUBLISH_RETRY_POLICY), no supervisor", {}, False),
            ("3 retries (nameko's count) + the runner's restart policy", {"PUBLISH_MAX_RETRIES": "3"}, True),
        ):
            task = bar.add_task(label, total=calls)
            vhost = f"outage_{uuid.uuid4().hex[:6]}"
            amqp_uri, stack = private_stack(
                args,
                broker,
                vhost,
                ["receiver", "sender"],
                env={"RECEIVER_WORK_SECONDS": str(work), "MAX_WORKERS": "20", **env},
                log_name="outage",
            )
            with stack:
                stack.start()
                stack.wait_ready()
                if supervised:
                    stack.start_supervisor()
                pids = {name: instance.pid for name, instance in stack.instances.items()}
                pool = eventlet.GreenPool()
                retried = []
                pending = [
                    pool.spawn(
                        call_with_retry,
                        amqp_uri,
                        *(
                            ("receiver_service", "receive_event")
                            if i % 2
                            else ("sender_service", "send_event")
                        ),
                        {"id": f"outage-{i}"},
                        timeout=outage + 60,
                        retry_for=outage + 120,
                        on_retry=retried.append,
                    )
                    for i in range(calls)
                ]
                while broker.queue_counts(vhost).get(rpc_queue("receiver_service"), (0, 0))[1] < calls:
                    time.sleep(0.1)
                broker.kill()
                down_at = time.monotonic()
                while time.monotonic() - down_at < outage:
                    time.sleep(0.2)
                broker.start()
                replies = 0
                for call in pending:
                    with contextlib.suppress(Exception):
                        call.wait()
                        replies += 1
                    bar.advance(task)
                recovered = time.monotonic() - down_at
                restarted = [name for name, instance in stack.instances.items() if instance.pid != pids[name]]
                up = [name for name, instance in stack.instances.items() if instance.running]
            rows.append(
                (
                    label,
                    f"{outage:.0f} s",
                    f"{replies}/{calls}",
                    f"{recovered:.1f} s",
                    f"{len(up)}/2",
                    ", ".join(restarted) or "none",
                    f"{len(retried)}",
                )
            )
    table(
        f"Broker outage while {calls} calls are mid-work (S = {work} s)",
        [
            "services publish with",
            "outage",
            "calls answered",
            "last reply after the broker died",
            "processes up",
            "restarted",
            "client retries",
        ],
        rows,
    )


SCENARIOS = {
    "concurrency": concurrency,
    "scaling": scaling,
    "fault-tolerance": fault_tolerance,
    "broker-restart": broker_restart,
    "broker-outage": broker_outage,
}
