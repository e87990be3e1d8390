"""receiver_service in a real container on the real broker and PostgreSQL."""

import time

import pytest
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import event

from common.db import Database
from receiver.service import ReceiverService


class InFlightWorkers(DependencyProvider):
    """Counts the workers running at once, from nameko's own worker hooks, and holds each new worker
    until `hold_until` of them are in flight: how many overlap then depends on the pool, not on how
    fast the calls happen to arrive. The hold waits with `time.sleep`: were it not green, the first
    worker would freeze the process and no other could start."""

    def setup(self):
        self.running = self.peak = self.started = 0
        self.hold_until = 1

    def worker_setup(self, worker_ctx):
        self.started += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        deadline = time.monotonic() + 30
        while self.peak < self.hold_until and time.monotonic() < deadline:
            time.sleep(0.01)

    def worker_teardown(self, worker_ctx):
        self.running -= 1


class ObservedReceiver(ReceiverService):
    in_flight = InFlightWorkers()


@pytest.fixture
def start_receiver(container_factory, service_config):
    def start(**overrides):
        config = service_config("receiver", **overrides)
        container = container_factory(ObservedReceiver, config)
        container.start()
        return config, container

    return start


def dependency(container, kind):
    return next(dep for dep in container.dependencies if isinstance(dep, kind))


def test_receive_event_replies_with_the_article_string(start_receiver):
    config, _ = start_receiver()

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        reply = cluster_rpc.receiver_service.receive_event({"message": "Hello World!!"})

    assert reply == "Event Received: {'message': 'Hello World!!'}"


def test_an_event_without_an_id_takes_no_database_connection(start_receiver):
    """It records nothing, so its worker does not check a connection out of the pool (which pings
    PostgreSQL): the article's call costs what a bare echo costs."""
    config, container = start_receiver()
    checkouts = []
    event.listen(dependency(container, Database).engine, "checkout", lambda *_: checkouts.append(1))

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        for _ in range(3):
            cluster_rpc.receiver_service.receive_event({"message": "Hello World!!"})
        no_id = len(checkouts)
        cluster_rpc.receiver_service.receive_event({"id": "evt-1", "message": "Hello World!!"})

    assert (no_id, len(checkouts)) == (0, 1)


def test_an_event_delivered_twice_is_recorded_once(start_receiver):
    config, _ = start_receiver()

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        first = cluster_rpc.receiver_service.receive_event({"id": "evt-1", "message": "once"})
        second = cluster_rpc.receiver_service.receive_event({"id": "evt-1", "message": "once"})
        cluster_rpc.receiver_service.receive_event({"id": "evt-2", "message": "twice"})
        receipts = cluster_rpc.receiver_service.receipt_count()

    assert first == second
    assert receipts == 2


def call_concurrently(config, count: int) -> list[str]:
    with ClusterRpcProxy(config, timeout=30) as cluster_rpc:
        replies = [cluster_rpc.receiver_service.receive_event.call_async(f"call {i}") for i in range(count)]
        return [reply.result() for reply in replies]


@pytest.mark.parametrize(("max_workers", "calls"), [(10, 20), (1, 5)])
def test_max_workers_bounds_how_many_calls_run_at_once(start_receiver, max_workers, calls):
    config, container = start_receiver(max_workers=max_workers)
    in_flight = dependency(container, InFlightWorkers)
    in_flight.hold_until = max_workers

    replies = call_concurrently(config, calls)

    assert sorted(replies) == sorted(f"Event Received: call {i}" for i in range(calls))
    assert in_flight.started == calls
    # held until max_workers overlap (the sleep is green), and the pool never lets one more in
    assert in_flight.peak == max_workers
