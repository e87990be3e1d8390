"""The embedded default under load: real `nameko run` processes on SQLite files, a local object store
and a webhook on loopback, while the cron job's `redispatch_stuck(0)` overlaps the live work.

100 messages with payloads, 20 in flight, to message_service and one or two time_consuming_service
processes (two share one SQLite file, as `stack up --scale time_consuming=2` on the default would).
Every message ends `done`, the webhook hears each message once (its Idempotency-Key), nobody logs
`database is locked`, and every process is still running.
"""

import contextlib
import logging
import subprocess
import sys
import time
from collections import Counter

import eventlet
import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from werkzeug import Response

from common.topology import rpc_queue
from testkit.processes import ServiceProcess, free_port, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE

MESSAGES = 100
IN_FLIGHT = 20

log = logging.getLogger(__name__)


@pytest.fixture
def webhook():
    keys = []

    def record(request):
        keys.append(request.headers.get("Idempotency-Key"))
        return Response("{}", status=200)

    server = HTTPServer(threaded=True)
    server.expect_request("/hook", method="POST").respond_with_handler(record)
    server.start()
    yield server, keys
    server.clear()
    server.stop()


def statuses(cluster_rpc, ids) -> Counter:
    return Counter(cluster_rpc.message_service.get_message(id_)["status"] for id_ in ids)


@pytest.mark.parametrize("time_consuming_processes", [1, 2], ids=["one-process", "two-processes-one-file"])
def test_the_sqlite_default_finishes_every_message_once_under_load_and_redispatch(
    own_vhost, rabbit_admin, webhook, tmp_path, time_consuming_processes
):
    vhost, amqp_uri = own_vhost
    server, keys = webhook
    env = {
        "AMQP_URI": amqp_uri,
        "LOCAL_STORE_DIR": str(tmp_path / "objects"),
        "WEBHOOK_URL": server.url_for("/hook"),
        "METRICS_PORT": "0",
    }
    processes = [
        ServiceProcess(
            "time_consuming",
            {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'time_consuming.sqlite3'}"},
            tmp_path,
            name=f"time_consuming-{number}",
        )
        for number in range(1, time_consuming_processes + 1)
    ]
    wait_for(
        lambda: rabbit_admin.consumers(vhost, HEAVY_PAYLOAD_QUEUE) == time_consuming_processes,
        timeout=60,
        message="time_consuming_service consuming",
    )
    message_env = {
        **env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'message.sqlite3'}",
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    processes.append(ServiceProcess("message", message_env, tmp_path))
    stop_redispatch = eventlet.event.Event()

    def redispatch_every_second():
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cron:
            while not stop_redispatch.ready():
                cron.message_service.redispatch_stuck(0)
                eventlet.sleep(1)

    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster_rpc:
            wait_for(
                lambda: rabbit_admin.consumers(vhost, rpc_queue("message_service")), 60, message="message"
            )
            started = time.monotonic()
            cron = eventlet.spawn(redispatch_every_second)
            ids = []
            for batch in range(MESSAGES // IN_FLIGHT):
                calls = [
                    cluster_rpc.message_service.receive_message.call_async(
                        {"message": f"m{batch}-{number}", "payload": {"batch": batch, "number": number}}
                    )
                    for number in range(IN_FLIGHT)
                ]
                ids.extend(call.result()["id"] for call in calls)
            with contextlib.suppress(AssertionError):  # the counts below say how far it got
                wait_for(lambda: statuses(cluster_rpc, ids)["done"] == MESSAGES, timeout=90, interval=1)
            log.warning("%s after %.1fs", dict(statuses(cluster_rpc, ids)), time.monotonic() - started)
            stop_redispatch.send()
            cron.wait()
            final = statuses(cluster_rpc, ids)
        alive = [process.process.poll() is None for process in processes]
    finally:
        if not stop_redispatch.ready():
            stop_redispatch.send()
        for process in processes:
            process.stop()
    logs = "".join(process.output() for process in processes)

    assert final == {"done": MESSAGES}
    assert len(set(keys)) == MESSAGES and set(keys) == set(ids)
    assert [key for key, count in Counter(keys).items() if count > 1] == []  # no repeated notification
    assert alive == [True] * len(processes)
    assert logs.count("database is locked") == 0


HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()  # until the test says so
connection.execute("COMMIT")
"""


def test_a_worker_waiting_for_sqlites_lock_does_not_freeze_its_process(own_vhost, rabbit_admin, tmp_path):
    """Another process holds the write lock: the waiting worker sleeps greenly, the process answers."""
    vhost, amqp_uri = own_vhost
    database = tmp_path / "time_consuming.sqlite3"
    metrics_port = free_port()
    env = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": f"sqlite:///{database}",
        "LOCAL_STORE_DIR": str(tmp_path / "objects"),
        "METRICS_PORT": str(metrics_port),
    }
    service = ServiceProcess("time_consuming", env, tmp_path)
    try:
        wait_for(lambda: rabbit_admin.consumers(vhost, HEAVY_PAYLOAD_QUEUE), 60, message="time_consuming")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert holder.stdout.readline() == b"held\n"
        event_dispatcher({"AMQP_URI": amqp_uri})(
            "message_service", "heavy_payload_event", {"message_id": "m-wait", "payload": {}}
        )
        wait_for(lambda: in_flight(metrics_port) == 1, message="the worker waiting for the lock")
        answers = [in_flight(metrics_port) for _ in range(20)]  # while the worker still waits
        holder.communicate(b"release\n", timeout=10)
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster_rpc:
            job = wait_for(
                lambda: (
                    (job := cluster_rpc.time_consuming_service.get_job("m-wait"))
                    and job["state"] == "notified"
                    and job
                ),
                message="the job after the lock was released",
            )
    finally:
        service.stop()

    assert answers == [1] * 20  # every scrape answered, each seeing the one waiting worker
    assert job["attempts"] == 1  # it waited; it was not failed and retried
    assert "database is locked" not in service.output()


def in_flight(port: int) -> float | None:
    """The process's `nameko_workers_in_flight` from its metrics endpoint (None if it does not answer)."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except requests.RequestException:
        return None
    for line in text.splitlines():
        if line.startswith("nameko_workers_in_flight{"):
            return float(line.rsplit(" ", 1)[1])
    return 0
