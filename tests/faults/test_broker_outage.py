"""A broker outage while workers are mid-call costs time, not processes and not requests.

Stock nameko 2.14 retries a reply 3 times, then the worker's error kills the container and `nameko
run` exits (with every request it held). Our services publish with `PUBLISH_RETRY_POLICY`
(`common.messaging`); clients retry their idempotent calls (`common.client.call_with_retry`).
The broker here is crashed (SIGKILL) while every worker sleeps in its call, and kept down until
each worker has failed to publish its reply more often than stock nameko allows.
"""

import eventlet

from common.client import call_with_retry
from common.topology import rpc_queue
from testkit.localstack import make_local_stack
from testkit.processes import wait_for
from tests.ops.logs import metrics_url, sample, scrape

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
    stack = make_local_stack(
        amqp_uri,
        postgres,
        tmp_path,
        services=["receiver", "sender"],
        env={**FAST_RETRIES, "RECEIVER_WORK_SECONDS": WORK_SECONDS, "MAX_WORKERS": "20"},
        management_url=f"{private_broker.management_url}/api",
    )
    with stack:
        stack.run_jobs()
        stack.start()
        stack.wait_ready()

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
            lambda: (
                stack.instances["receiver-1"].output().count(RETRY_LOG)
                >= CALLS * (NAMEKO_DEFAULT_MAX_RETRIES + 2)
            ),
            message="each worker to retry its reply more often than nameko's default allows",
        )
        private_broker.start()

        replies = [call.wait() for call in calls]

        assert replies == [f"Event Received: {{'id': 'outage-{i}'}}" for i in range(CALLS)]
        assert [instance.running for instance in stack.instances.values()] == [True, True], "a service exited"
        assert call_with_retry(amqp_uri, "receiver_service", "receipt_count") == CALLS
        assert call_with_retry(amqp_uri, "sender_service", "send_event", "after") == "Event Received: after"
        # every retry is counted for Prometheus as it is logged
        receiver = stack.instances["receiver-1"]
        publish_retries = sample(scrape(metrics_url(receiver)), "nameko_publish_retries_total")
        assert (
            publish_retries == receiver.output().count(RETRY_LOG) >= CALLS * (NAMEKO_DEFAULT_MAX_RETRIES + 2)
        )
        exit_codes = stack.stop()
    assert exit_codes == {"sender-1": 0, "receiver-1": 0}, stack.instances["receiver-1"].output()[-5000:]
