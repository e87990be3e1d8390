"""A crash between parking an event and acking it loses nothing, and replay yields one outcome.

A real time_consuming_service process parks an event the webhook refuses (HTTP 410) and is killed
by the fail point `consumer.after_park` once the broker has confirmed the dead letter, before the
original is acked. The broker delivers the original again to the restarted process, which parks it
again (the webhook still refuses): two dead letters of one event. Once the webhook accepts, replaying
both gives one notification and one `notified` job; the second copy finds the job finished.
"""

import signal
import uuid

from kombu import Connection, Queue
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from werkzeug import Response

from common.dead_letters import list_dead_letters, replay_dead_letters
from testkit.processes import ServiceProcess, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE


def test_a_kill_between_park_and_ack_parks_again_and_replay_gives_one_outcome(
    own_vhost, rabbit_admin, postgres, tmp_path
):
    vhost, amqp_uri = own_vhost
    statuses = []

    def refuse_twice(request):
        statuses.append(410 if len(statuses) < 2 else 200)
        return Response("{}", status=statuses[-1])

    webhook = HTTPServer(threaded=True)
    webhook.expect_request("/hook", method="POST").respond_with_handler(refuse_twice)
    webhook.start()
    config = {"AMQP_URI": amqp_uri, "DEAD_LETTER_QUEUE": f"dead-letters-{uuid.uuid4().hex[:8]}"}
    env = {
        **config,
        "DATABASE_URL": postgres(),
        "LOCAL_STORE_DIR": str(tmp_path / "objects"),
        "WEBHOOK_URL": webhook.url_for("/hook"),
    }
    with Connection(amqp_uri) as connection:
        outcomes = Queue(
            "outcomes",
            exchange=get_event_exchange("time_consuming_service", config),
            routing_key="payload_processed",
        ).bind(connection.default_channel)
        outcomes.declare()

        first = ServiceProcess("time_consuming", {**env, "FAILPOINTS": "consumer.after_park=kill"}, tmp_path)
        wait_for(lambda: rabbit_admin.consumers(vhost, HEAVY_PAYLOAD_QUEUE), 60, message="the first process")
        event_dispatcher(config)(
            "message_service", "heavy_payload_event", {"message_id": "m-p", "payload": {}}
        )
        assert first.process.wait(60) == -signal.SIGKILL
        first.stop()
        parked_before_the_kill = list_dead_letters(config)

        second = ServiceProcess("time_consuming", env, tmp_path, name="time_consuming-2")
        try:
            wait_for(lambda: len(list_dead_letters(config)) == 2, 60, message="the redelivered event parked")
            replayed = replay_dead_letters(config)
            reports = []
            wait_for(
                lambda: reports.extend(iter(lambda: outcomes.get(no_ack=True), None)) or len(reports) == 4,
                60,
                message="four reports: two parked, two replayed",
            )
            with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
                job = cluster_rpc.time_consuming_service.get_job("m-p")
            left = list_dead_letters(config)
        finally:
            second.stop()
            webhook.stop()

    assert [letter["body"]["message_id"] for letter in parked_before_the_kill] == ["m-p"]
    assert len(replayed) == 2 and left == []
    assert statuses == [410, 410, 200]  # one notification accepted: the second replayed copy found it done
    assert [report.decode()["status"] for report in reports] == ["failed", "failed", "done", "done"]
    assert job["state"] == "notified"
