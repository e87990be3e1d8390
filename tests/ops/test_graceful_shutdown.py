"""SIGTERM (what `docker stop` and Kubernetes send) on a receiver that has calls in flight."""

import signal

import eventlet
import pytest
import sqlalchemy
from nameko.standalone.rpc import ClusterRpcProxy

import common.failpoints
from common.db import Database
from common.shutdown import EXIT_ABANDONED, abandon
from common.topology import rpc_queue
from message.service import MessageService
from testkit.processes import ServiceProcess, wait_for
from testkit.rabbit import broker_address
from tests.ops.logs import consumers_now, metrics_url, sample, scrape, waiting_in, worker_lines
from tests.ops.proxy import TcpProxy, through

IN_FLIGHT = "nameko_workers_in_flight"


@pytest.fixture
def amqp_uri(own_vhost):
    """A vhost of this test's own: consumers left by earlier tests cannot blur the counts."""
    return own_vhost[1]


def start_receiver(env, log_dir):
    log_dir.mkdir()
    return ServiceProcess("receiver", env, log_dir)


def handled(process) -> int:
    return sum(line["entrypoint"] == "receive_event" for line in worker_lines(process))


def test_sigterm_finishes_in_flight_calls_once_and_exits_0(amqp_uri, postgres, tmp_path):
    env = {"AMQP_URI": amqp_uri, "DATABASE_URL": postgres(), "RECEIVER_WORK_SECONDS": "2"}
    stopping = start_receiver(env, tmp_path / "stopping")
    staying = start_receiver(env, tmp_path / "staying")
    try:
        wait_for(
            lambda: consumers_now(amqp_uri, rpc_queue("receiver_service")) == 2,
            timeout=60,
            message="both receivers consuming",
        )
        stopping_metrics = metrics_url(stopping)
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster_rpc:
            receive_event = cluster_rpc.receiver_service.receive_event
            before = [receive_event.call_async(f"before-{i}") for i in range(12)]
            wait_for(
                lambda: sample(scrape(stopping_metrics), IN_FLIGHT, service="receiver_service") > 0,
                message="calls in flight on the instance to stop",
            )
            stopping.process.send_signal(signal.SIGTERM)
            after = [receive_event.call_async(f"after-{i}") for i in range(6)]

            replies = [reply.result() for reply in before + after]
            exit_code = stopping.process.wait(30)
    finally:
        stopping.stop()
        staying.stop()

    assert replies == [f"Event Received: before-{i}" for i in range(12)] + [
        f"Event Received: after-{i}" for i in range(6)
    ]
    assert exit_code == 0, stopping.output()
    handled_by_stopping = handled(stopping)
    assert handled_by_stopping > 0
    # Each call ran once: none of the stopping instance's workers was requeued and run again.
    assert handled_by_stopping + handled(staying) == 18
    assert "stopping: consumers cancelled" in stopping.output()


def test_a_worker_that_never_finishes_is_abandoned_after_the_timeout(amqp_uri, postgres, tmp_path):
    # The receiver takes 10 minutes, so the sender's worker waits on RpcProxy (which has no timeout):
    # without a deadline, SIGTERM would leave the sender running until SIGKILL.
    receiver = start_receiver(
        {"AMQP_URI": amqp_uri, "DATABASE_URL": postgres(), "RECEIVER_WORK_SECONDS": "600"}, tmp_path / "r"
    )
    (tmp_path / "s").mkdir()
    sender = ServiceProcess("sender", {"AMQP_URI": amqp_uri, "SHUTDOWN_TIMEOUT": "1"}, tmp_path / "s")
    try:
        for queue in (rpc_queue("receiver_service"), rpc_queue("sender_service")):
            wait_for(lambda q=queue: consumers_now(amqp_uri, q), timeout=60, message=queue)
        sender_metrics = metrics_url(sender)
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster_rpc:
            cluster_rpc.sender_service.send_event.call_async("never answered")
            wait_for(
                lambda: sample(scrape(sender_metrics), IN_FLIGHT, service="sender_service") == 1,
                message="the sender's call in flight",
            )
            sender.process.send_signal(signal.SIGTERM)

            exit_code = sender.process.wait(30)
    finally:
        receiver.process.kill()
        receiver.stop()
        sender.stop()

    assert exit_code == EXIT_ABANDONED, sender.output()
    assert "abandoning 1 worker(s)" in sender.output()
    # Not acked, so not lost: the request is back in the queue for the next sender instance.
    wait_for(lambda: waiting_in(amqp_uri, rpc_queue("sender_service")) == 1, message="the request requeued")


def test_sigterm_while_the_broker_is_unreachable_still_ends_the_process(amqp_uri, broker_uri, tmp_path):
    # nameko alone would wait forever for its consumer thread, busy reconnecting, to cancel its consumers.
    proxy = TcpProxy(broker_address(broker_uri)).start()
    env = {"AMQP_URI": through(proxy, amqp_uri), "SHUTDOWN_TIMEOUT": "1"}
    (tmp_path / "s").mkdir()
    sender = ServiceProcess("sender", env, tmp_path / "s")
    try:
        # Counted by a passive declare: the management API's counts lag by seconds, and a SIGTERM
        # before the consumers are up takes nameko's other path (it kills its consumer and exits 1).
        queue = rpc_queue("sender_service")
        wait_for(lambda: consumers_now(amqp_uri, queue), timeout=60, message="consuming")
        proxy.cut()
        wait_for(lambda: "Error connecting to broker" in sender.output(), message="the sender reconnecting")
        sender.process.send_signal(signal.SIGTERM)

        exit_code = sender.process.wait(30)
    finally:
        proxy.stop()
        sender.stop()

    assert exit_code == 1
    assert "still not stopped 6.0s after SIGTERM" in sender.output()


def test_an_abandoned_worker_releases_its_database_session(container_factory, service_config, monkeypatch):
    # In-process, so the container can be looked at after the abandon (a process would exit).
    monkeypatch.setitem(common.failpoints.ARMED, "message.before_commit", "sleep(600)")
    config = service_config("message", WEB_SERVER_ADDRESS="127.0.0.1:0")
    container = container_factory(MessageService, config)
    container.start()
    database = next(provider for provider in container.dependencies if isinstance(provider, Database))
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        cluster_rpc.message_service.receive_message.call_async({"message": "never committed"})
        worker_ctx, worker = wait_for(
            lambda: next(iter(container._worker_threads.items()), None), message="the worker in flight"
        )
        wait_for(lambda: database.engine.pool.checkedout() == 1, message="its session's connection in use")

        abandon(container, worker_ctx, worker)
        eventlet.sleep(0)

    assert database.engine.pool.checkedout() == 0
    assert database.workers == {}
    engine = sqlalchemy.create_engine(config["DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT count(*) FROM messages")).scalar() == 0
    engine.dispose()


def test_a_service_with_a_timer_stops_after_abandoning_and_says_so(amqp_uri, postgres, tmp_path):
    # One RPC worker stuck in its transaction, and the outbox timer's worker stuck in the relay:
    # nameko's Timer waits for its worker before it stops, so without help it never would.
    env = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": postgres(),
        "WEB_SERVER_ADDRESS": "127.0.0.1:0",
        "SHUTDOWN_TIMEOUT": "1",
    }
    (tmp_path / "stuck").mkdir()
    stuck = ServiceProcess(
        "message",
        {**env, "FAILPOINTS": "message.before_commit=sleep(600);message.before_relay=sleep(600)"},
        tmp_path / "stuck",
    )
    queue = rpc_queue("message_service")
    try:
        wait_for(lambda: consumers_now(amqp_uri, queue), timeout=60, message="consuming")
        metrics = metrics_url(stuck)
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster_rpc:
            reply = cluster_rpc.message_service.receive_message.call_async(
                {"message": "abandoned", "payload": [1]}
            )
            wait_for(
                lambda: sample(scrape(metrics), IN_FLIGHT, service="message_service") == 2,
                message="the RPC worker and the timer's worker in flight",
            )
            stuck.process.send_signal(signal.SIGTERM)
            exit_code = stuck.process.wait(30)
            requeued = waiting_in(amqp_uri, queue)

            (tmp_path / "next").mkdir()
            following = ServiceProcess("message", env, tmp_path / "next")  # takes the redelivered request
            answer = reply.result()
    finally:
        stuck.stop()
    following.stop()

    assert exit_code == EXIT_ABANDONED, stuck.output()
    assert "abandoning 2 worker(s)" in stuck.output()
    assert requeued == 1
    engine = sqlalchemy.create_engine(env["DATABASE_URL"])
    with engine.connect() as connection:
        stored = connection.execute(sqlalchemy.text("SELECT id FROM messages")).scalars().all()
    engine.dispose()
    assert stored == [answer["id"]]  # the abandoned transaction left nothing behind
