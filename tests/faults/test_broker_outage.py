"""A broker outage while workers are mid-call costs time, not processes and not requests.

Stock nameko 2.14 retries a reply 3 times, then the worker's error kills the container and `nameko
run` exits (with every request it held). Our services publish with `PUBLISH_RETRY_POLICY`
(`common.messaging`); clients retry their idempotent calls (`common.client.call_with_retry`).
The broker here is crashed (SIGKILL) while every worker sleeps in its call, and kept down until
each worker has failed to publish its reply more often than stock nameko allows.
"""

import eventlet

from common.client import call_with_retry
from tests.support import ServiceProcess, rpc_queue, wait_for

CALLS = 10  # 5 straight to the receiver, 5 through sender -> receiver: 10 receiver workers busy
WORK_SECONDS = "6"  # long enough to see every call in flight (rabbitmqctl) and crash the broker under it
FAST_RETRIES = {
    "PUBLISH_RETRY_INTERVAL_START": "0.2",
    "PUBLISH_RETRY_INTERVAL_STEP": "0.2",
    "PUBLISH_RETRY_INTERVAL_MAX": "0.5",
}
NAMEKO_DEFAULT_MAX_RETRIES = 3
RETRY_LOG = "publishing again"


def unacked(broker, vhost, queue) -> int:
    return next(
        (q.get("messages_unacknowledged", 0) for q in broker.admin.queues(vhost) if q["name"] == queue), 0
    )


def test_broker_outage_while_workers_are_busy(private_broker, private_amqp_uri, postgres, tmp_path):
    amqp_uri, vhost = private_amqp_uri
    env = {"AMQP_URI": amqp_uri, **FAST_RETRIES}
    receiver = ServiceProcess(
        "receiver",
        {**env, "DATABASE_URL": postgres(), "RECEIVER_WORK_SECONDS": WORK_SECONDS, "MAX_WORKERS": "20"},
        tmp_path,
    )
    sender = ServiceProcess("sender", env, tmp_path)
    services = [receiver, sender]
    try:
        for name in ("receiver_service", "sender_service"):
            wait_for(lambda n=name: private_broker.admin.consumers(vhost, rpc_queue(n)), message=f"{name} up")

        pool = eventlet.GreenPool()
        calls = [
            pool.spawn(
                call_with_retry,
                amqp_uri,
                *(("receiver_service", "receive_event") if i % 2 else ("sender_service", "send_event")),
                {"id": f"outage-{i}"},
                timeout=30,
            )
            for i in range(CALLS)
        ]
        wait_for(
            lambda: unacked(private_broker, vhost, rpc_queue("receiver_service")) == CALLS,
            message="every receiver worker mid-call",
        )

        private_broker.kill()
        # each worker logs once per failed attempt, its first try included
        wait_for(
            lambda: receiver.output().count(RETRY_LOG) >= CALLS * (NAMEKO_DEFAULT_MAX_RETRIES + 2),
            message="each worker to retry its reply more often than nameko's default allows",
        )
        private_broker.start()

        replies = [call.wait() for call in calls]

        assert replies == [f"Event Received: {{'id': 'outage-{i}'}}" for i in range(CALLS)]
        assert [service.process.poll() for service in services] == [None, None], "a service exited"
        assert call_with_retry(amqp_uri, "receiver_service", "receipt_count") == CALLS
        assert call_with_retry(amqp_uri, "sender_service", "send_event", "after") == "Event Received: after"
    finally:
        exit_codes = [service.stop() for service in services]
    assert exit_codes == [0, 0], receiver.output()[-5000:]
