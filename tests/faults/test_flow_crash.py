"""A real process killed at each step of the flow: the message still ends `done`, its payload stored,
and the webhook sees what the guarantees table says (docs/flow.md, "Guarantees, step by step").

message_service and time_consuming_service run as real `nameko run` processes on PostgreSQL; one of
them is started with a fail point armed (`common.failpoints`), which SIGKILLs it exactly there, then
restarted without it. The webhook counts every notification and its `Idempotency-Key`.
"""

import json
import signal
import uuid

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from werkzeug import Response

from common.topology import handler_queues, rpc_queue
from message.service import MessageService
from testkit.processes import ServiceProcess, free_port, wait_for
from time_consuming.service import TimeConsumingService

# fail point -> (the process it kills, notifications the webhook accepts for the one message)
CASES = {
    # the event went out, the outbox row not marked: the restarted relay sends it again, handled once
    "message.before_outbox_mark": ("message", 1),
    # the payload is stored, the job not told: the upload is done again (same key), notified once
    "time_consuming.after_upload": ("time_consuming", 1),
    # the webhook answered, the job not told: notified again once the lease expires, same key
    "time_consuming.after_notify": ("time_consuming", 2),
    # everything recorded, the event not acked: redelivered, finds the job notified, reports done again
    "consumer.before_ack": ("time_consuming", 1),
}


@pytest.fixture
def webhook():
    server = HTTPServer(threaded=True)
    server.keys = []

    def accept(request):
        server.keys.append(request.headers.get("Idempotency-Key"))
        return Response("{}", status=200)

    server.expect_request("/hook", method="POST").respond_with_handler(accept)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("point", CASES)
def test_a_process_killed_at_a_step_still_ends_done(
    point, own_vhost, rabbit_admin, postgres, webhook, tmp_path
):
    vhost, amqp_uri = own_vhost
    victim, accepted = CASES[point]
    store = tmp_path / "objects"
    env = {
        "message": {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": postgres(),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        },
        "time_consuming": {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": postgres(),
            "LOCAL_STORE_DIR": str(store),
            "WEBHOOK_URL": webhook.url_for("/hook"),
            # a killed worker's job is taken over once its lease expires; retries come back after 1 s
            "JOB_LEASE_SECONDS": "2",
            "RETRY_DELAYS": "1",
            "RETRY_MAX_ATTEMPTS": "30",
        },
    }
    queues = {
        "message": rpc_queue("message_service"),
        "time_consuming": handler_queues(TimeConsumingService, {"AMQP_URI": amqp_uri})[0].name,
    }
    assert handler_queues(MessageService, {"AMQP_URI": amqp_uri})  # it consumes payload_processed too

    def start(service, name, **extra):
        process = ServiceProcess(service, {**env[service], **extra}, tmp_path, name=name)
        wait_for(lambda: rabbit_admin.consumers(vhost, queues[service]), 60, message=f"{name} consuming")
        return process

    fail_here = {"FAILPOINTS": f"{point}=kill"}
    processes = {  # time_consuming first: its queue exists before message_service relays an event
        service: start(service, f"{service}-1", **(fail_here if service == victim else {}))
        for service in ("time_consuming", "message")
    }
    config = {"AMQP_URI": amqp_uri}
    new_message = {"message": "m", "payload": {"order": 7}, "idempotency_key": f"key-{uuid.uuid4().hex}"}

    def receive():
        with ClusterRpcProxy(config, timeout=60) as cluster_rpc:
            return cluster_rpc.message_service.receive_message(new_message)

    try:
        first_call = eventlet.spawn(receive)  # killed before its reply when the victim is message_service
        assert processes[victim].process.wait(60) == -signal.SIGKILL
        processes[victim].stop()
        processes[victim] = start(victim, f"{victim}-2")
        message_id = receive()["id"]  # the same key: the same message
        first_call.kill()

        with ClusterRpcProxy(config, timeout=30) as cluster_rpc:  # four test shards share two cores
            wait_for(
                lambda: cluster_rpc.message_service.get_message(message_id)["status"] == "done",
                60,
                message="the message done",
            )
            job = cluster_rpc.time_consuming_service.get_job(message_id)
    finally:
        for process in processes.values():
            process.stop()

    assert job["state"] == "notified"
    assert json.loads((store / "payloads" / f"{message_id}.json").read_text()) == {"order": 7}
    assert webhook.keys == [message_id] * accepted
