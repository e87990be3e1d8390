"""PostgreSQL stopped for 15 s while 40 messages are being processed: every message still ends `done`.

Real `nameko run` processes of message_service and time_consuming_service on a private PostgreSQL
cluster (the shared one on 5432 is never stopped). The webhook holds the first notifications until
the database is down, so the workers meet the outage in the middle of their work: recording the
job, and message_service recording the outcome. Their events are retried later through the retry
queues (delays shortened by settings) instead of being acked and dropped.
"""

import contextlib
import threading
import time
from collections import Counter

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from werkzeug import Response

from common.topology import rpc_queue
from message.service import MessageService
from testkit.private_postgres import PrivatePostgres
from testkit.processes import ServiceProcess, free_port, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE

MESSAGES = 40
OUTAGE_SECONDS = 15


def statuses(cluster_rpc, ids) -> Counter:
    return Counter(cluster_rpc.message_service.get_message(id_)["status"] for id_ in ids)


def test_a_database_outage_mid_processing_loses_no_message(own_vhost, rabbit_admin, tmp_path):
    vhost, amqp_uri = own_vhost
    held, release = threading.Event(), threading.Event()
    keys = []

    def hold_until_the_database_is_down(request):
        keys.append(request.headers.get("Idempotency-Key"))
        held.set()
        release.wait(60)
        return Response("{}", status=200)

    webhook = HTTPServer(threaded=True)
    webhook.expect_request("/hook", method="POST").respond_with_handler(hold_until_the_database_is_down)
    webhook.start()
    database = PrivatePostgres()
    database.start()
    env = {
        "AMQP_URI": amqp_uri,
        "LOCAL_STORE_DIR": str(tmp_path / "objects"),
        "WEBHOOK_URL": webhook.url_for("/hook"),
        "WEBHOOK_READ_TIMEOUT": "60",
        "RETRY_DELAYS": "1,2,4",
        "RETRY_MAX_ATTEMPTS": "30",
    }
    processes = []
    try:
        processes.append(
            ServiceProcess(
                "time_consuming",
                {**env, "DATABASE_URL": database.create_database("time_consuming")},
                tmp_path,
            )
        )
        message_env = {
            **env,
            "DATABASE_URL": database.create_database("message"),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        processes.append(ServiceProcess("message", message_env, tmp_path))
        wait_for(lambda: rabbit_admin.consumers(vhost, HEAVY_PAYLOAD_QUEUE), 60, message="time_consuming")
        wait_for(lambda: rabbit_admin.consumers(vhost, rpc_queue("message_service")), 60, message="message")
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster_rpc:
            calls = [
                cluster_rpc.message_service.receive_message.call_async(
                    {"message": f"m{number}", "payload": {"number": number}}
                )
                for number in range(MESSAGES)
            ]
            ids = [call.result()["id"] for call in calls]
            wait_for(held.is_set, message="the first notification")
            database.stop()
            release.set()  # the held workers now record their jobs against a stopped database
            time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a result
            database.start()
            with contextlib.suppress(AssertionError):  # the counts below say how far it got
                wait_for(lambda: statuses(cluster_rpc, ids)["done"] == MESSAGES, timeout=60, interval=1)
            final = statuses(cluster_rpc, ids)
        alive = [process.process.poll() is None for process in processes]
    finally:
        release.set()
        for process in processes:
            process.stop()
        webhook.stop()
        database.close()
    logs = "".join(process.output() for process in processes)

    assert final == {"done": MESSAGES}
    assert set(keys) == set(ids)
    assert alive == [True, True]
    assert "retrying in" in logs  # the outage was met and retried, not skipped


def test_message_services_outcome_handler_retries_while_its_database_is_down(
    own_vhost, container_factory, service_config
):
    _, amqp_uri = own_vhost
    with PrivatePostgres() as database:
        config = service_config(
            "message",
            AMQP_URI=amqp_uri,
            DATABASE_URL=database.create_database("message"),
            WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
            RETRY_DELAYS="0.5",
            RETRY_MAX_ATTEMPTS=1000,
        )
        container_factory(MessageService, config).start()
        with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
            message_id = cluster_rpc.message_service.receive_message({"message": "m", "payload": {"n": 1}})[
                "id"
            ]
            database.stop()
            dispatch = event_dispatcher(config)
            dispatch(
                "time_consuming_service", "payload_processed", {"message_id": message_id, "status": "done"}
            )
            time.sleep(3)  # the outage: the handler meets the stopped database several times
            database.start()
            message = wait_for(
                lambda: (
                    cluster_rpc.message_service.get_message(message_id)["status"] == "done"
                    and cluster_rpc.message_service.get_message(message_id)
                ),
                message="the outcome recorded",
            )

    assert message["status"] == "done"
