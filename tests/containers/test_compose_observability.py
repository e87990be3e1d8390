"""The compose profile `observability` for real: Prometheus (deploy/prometheus/) started next to the
session's stack of three receivers, asked through its HTTP API what it scraped.

Before test_graceful_stop (files run in name order), which counts the stack's containers: the
Prometheus container is removed again when this module ends.
"""

import subprocess
from collections import Counter
from datetime import UTC, datetime

import pytest
import requests

from testkit.processes import wait_for

pytestmark = pytest.mark.timeout(1500)

# Prometheus scrapes every 15 s and evaluates the rules as often: a minute is four rounds.
WITHIN = 60


@pytest.fixture(scope="module")
def processed_message(compose_stack):
    """One message with a payload, all the way to `done`, before Prometheus starts."""
    base = f"http://127.0.0.1:{compose_stack.host_port('message', 8000)}"
    created = requests.post(f"{base}/messages", json={"message": "watched", "payload": {"n": 1}}, timeout=10)
    assert created.status_code == 201, created.text
    url = f"{base}/messages/{created.json()['id']}"
    wait_for(lambda: requests.get(url, timeout=10).json()["status"] == "done", timeout=60, interval=0.5)


@pytest.fixture(scope="module")
def prometheus(compose_stack, processed_message):
    compose_stack.compose("--profile", "observability", "up", "-d", "--no-deps", "prometheus")
    try:
        base = f"http://127.0.0.1:{compose_stack.host_port('prometheus', 9090)}/api/v1"
        wait_for(lambda: ready(base), timeout=WITHIN, interval=1, message="Prometheus's API")
        yield base
    finally:
        compose_stack.compose("--profile", "observability", "rm", "-sfv", "prometheus", check=False)
        # `down -v` at the session's end leaves the volumes of services of a profile it was not given
        subprocess.run(
            ["docker", "volume", "rm", f"{compose_stack.project}_prometheus-data"], capture_output=True
        )


def ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/status/runtimeinfo", timeout=5).ok
    except requests.ConnectionError:
        return False


def query(base: str, promql: str) -> list[dict]:
    answer = requests.get(f"{base}/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def collected(base: str, promql: str) -> list[dict]:
    """The query's series, once Prometheus has scraped any."""
    return wait_for(lambda: query(base, promql), timeout=WITHIN, interval=1, message=promql)


def container_addresses(compose_stack, service: str) -> set[str]:
    return {
        network["IPAddress"]
        for container in compose_stack.containers(service)
        for network in container["NetworkSettings"]["Networks"].values()
    }


def test_every_service_instance_is_a_target_of_its_own_and_answers(compose_stack, prometheus):
    def scraped():
        series = query(prometheus, 'up{job="nameko"}')
        return len(series) == 6 and series

    series = wait_for(scraped, timeout=WITHIN, interval=1, message="six service instances scraped")

    assert Counter(s["metric"]["compose_service"] for s in series) == {
        "message": 1,
        "time_consuming": 1,
        "sender": 1,
        "receiver": 3,
    }
    assert {s["value"][1] for s in series} == {"1"}
    receivers = {s["metric"]["instance"] for s in series if s["metric"]["compose_service"] == "receiver"}
    assert receivers == {f"{address}:9100" for address in container_addresses(compose_stack, "receiver")}


def test_the_brokers_plugin_is_scraped_per_queue(prometheus):
    [up] = collected(prometheus, 'up{job="rabbitmq"}')
    assert (up["metric"]["instance"], up["value"][1]) == ("rabbitmq:15692", "1")
    [consumers] = collected(prometheus, 'rabbitmq_queue_consumers{queue="rpc-receiver_service"}')
    assert consumers["value"][1] == "3"


def test_the_domain_metrics_of_the_services_are_collected(prometheus):
    [done] = collected(prometheus, 'time_consuming_jobs_total{outcome="done"}')
    assert done["metric"]["compose_service"] == "time_consuming"
    assert float(done["value"][1]) >= 1  # the processed message's job at least
    [unsent] = collected(prometheus, "message_outbox_unsent")
    [age] = collected(prometheus, "message_outbox_oldest_unsent_age_seconds")
    assert (unsent["metric"]["compose_service"], unsent["value"][1], age["value"][1]) == ("message", "0", "0")


def test_the_alert_rules_are_loaded_and_none_is_pending_on_a_healthy_stack(prometheus):
    # every target scraped (7 answering), then a round of rule evaluations after that moment
    [targets] = wait_for(
        lambda: (found := query(prometheus, "count(up == 1) == 7")) and found, timeout=WITHIN, interval=1
    )
    scraped_at = targets["value"][0]

    def evaluated_since_then():
        [group] = requests.get(f"{prometheus}/rules", timeout=10).json()["data"]["groups"]
        last = datetime.strptime(group["lastEvaluation"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        healthy = all(rule["health"] == "ok" for rule in group["rules"])
        return healthy and last.timestamp() > scraped_at and group["rules"]

    rules = wait_for(evaluated_since_then, timeout=WITHIN, interval=1, message="the rules evaluated")

    assert {rule["name"] for rule in rules} >= {
        "DeadLetterParked",
        "OutboxBacklogOld",
        "QueueWithoutConsumer",
        "ErrorRatioHigh",
        "TargetDown",
    }
    assert requests.get(f"{prometheus}/alerts", timeout=10).json()["data"]["alerts"] == []
