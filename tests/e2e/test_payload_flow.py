"""message -> event -> upload -> notification, through real `nameko run` processes (the local runner),
a real S3 API (moto's server) and a real webhook receiver."""

import json
import threading

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from werkzeug import Response

from testkit.processes import wait_for


@pytest.fixture
def webhook():
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def start_stack(local_stack, s3, webhook, **settings):
    _, s3_settings = s3
    env = {**s3_settings, "WEBHOOK_URL": webhook.url_for("/hook"), "WEBHOOK_BACKOFF": "0.01", **settings}
    return local_stack("message", "time_consuming", env=env)


def message_status(amqp_uri, message_id, final=("done", "failed")):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster_rpc:
        message = cluster_rpc.message_service.get_message(message_id)
    return message if message["status"] in final else None


def receive(amqp_uri, payload) -> str:
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster_rpc:
        return cluster_rpc.message_service.receive_message({"message": "hello", "payload": payload})["id"]


def test_a_message_with_a_payload_is_uploaded_notified_and_done(local_stack, amqp_uri, s3, webhook):
    webhook.expect_request("/hook", method="POST").respond_with_json({})
    start_stack(local_stack, s3, webhook)
    client, settings = s3

    message_id = receive(amqp_uri, {"order": 42})
    message = wait_for(lambda: message_status(amqp_uri, message_id), message="the message to be done")

    assert message["status"] == "done"
    key = f"payloads/{message_id}.json"
    assert json.loads(client.get_object(Bucket=settings["S3_BUCKET"], Key=key)["Body"].read()) == {
        "order": 42
    }
    assert [request.json for request, _ in webhook.log] == [
        {"message_id": message_id, "object_key": key, "outcome": "uploaded"}
    ]


def test_a_job_killed_mid_notification_is_taken_over_once_its_lease_expires(
    local_stack, amqp_uri, s3, webhook
):
    first_arrived, release = threading.Event(), threading.Event()
    received = []

    def first_one_hangs(request):
        received.append(request.json["message_id"])
        if len(received) == 1:
            first_arrived.set()
            release.wait(30)
            return Response("the sender died meanwhile", status=503)
        return Response("{}", status=200)

    webhook.expect_request("/hook", method="POST").respond_with_handler(first_one_hangs)
    # the redelivered event finds the killed worker's lease and is retried until it has expired
    stack = start_stack(local_stack, s3, webhook, JOB_LEASE_SECONDS="3", RETRY_DELAYS="1")
    client, settings = s3

    message_id = receive(amqp_uri, {"order": 7})
    wait_for(first_arrived.is_set, message="the first notification to arrive")
    stack.kill("time_consuming-1")  # kill -9 while its worker waits for the webhook
    release.set()
    stack.start("time_consuming-1")
    message = wait_for(lambda: message_status(amqp_uri, message_id), message="the message to be done")

    assert message["status"] == "done"
    assert received == [message_id, message_id]  # the redelivered event redid the work
    assert [response.status_code for _, response in webhook.log] == [503, 200]  # one successful notification
    listing = client.list_objects_v2(Bucket=settings["S3_BUCKET"])["Contents"]
    assert [item["Key"] for item in listing] == [f"payloads/{message_id}.json"]
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster_rpc:
        job = cluster_rpc.time_consuming_service.get_job(message_id)
    assert job["state"] == "notified" and job["attempts"] == 2  # killed, then the one that took over
