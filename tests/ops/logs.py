"""Reading what a real service process says (its JSON log lines, its Prometheus endpoint) and what
the broker says right now (the management API's counts lag by seconds)."""

import contextlib
import json

import requests
from amqp.exceptions import ChannelError
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from testkit.processes import ServiceProcess, wait_for


def json_lines(process: ServiceProcess) -> list[dict]:
    """Every JSON log line the process wrote (warnings printed by imports are not JSON)."""
    lines = []
    for line in process.output().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):  # a line the process is still writing
                lines.append(json.loads(line))
    return lines


def worker_lines(process: ServiceProcess) -> list[dict]:
    return [line for line in json_lines(process) if line["logger"] == "nameko.worker"]


def metrics_url(process) -> str:
    """The endpoint of a process (a ServiceProcess, a `stack` instance); with METRICS_PORT=0 the
    port it got is in its log."""
    port = wait_for(
        lambda: next((line["metrics_port"] for line in json_lines(process) if "metrics_port" in line), None),
        message="the process to log its metrics port",
    )
    return f"http://127.0.0.1:{port}/metrics"


def scrape(url: str) -> dict:
    """{(sample name, frozenset of labels): value} from one scrape."""
    text = requests.get(url, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def consumers_now(amqp_uri: str, queue: str) -> int:
    """Consumers on `queue` this instant, by passive declare; 0 when it is not declared yet."""
    with Connection(amqp_uri) as connection:
        try:
            return connection.channel().queue_declare(queue, passive=True)[2]
        except ChannelError:
            return 0


def waiting_in(amqp_uri: str, queue: str) -> int:
    """Messages ready in `queue` this instant."""
    with Connection(amqp_uri) as connection:
        return connection.channel().queue_declare(queue, passive=True)[1]
