"""The article's broker-restart claim: events dispatched while their handler is down survive a restart.

message_service dispatches `heavy_payload_event` (persistent messages, published with confirms) into
time_consuming_service's durable queue while time_consuming_service is stopped; RabbitMQ is then
restarted (the whole node); message_service reconnects by itself; time_consuming_service starts and
handles every event: each message ends `done`, none is lost.

Where each guarantee is set: durable exchanges and queues (`nameko.events.get_event_exchange`,
`EventHandler`'s queue `durable=True`, `nameko.rpc.get_rpc_exchange` / `RpcConsumer`'s queue);
persistent messages (`nameko.amqp.publish.Publisher.delivery_mode = PERSISTENT`); publisher confirms
(`Publisher.use_confirms = True`: a dispatch returns only once the broker has the event).
"""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from common.client import BROKER_ERRORS, call_with_retry
from common.topology import rpc_queue
from testkit.localstack import make_local_stack
from testkit.processes import wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE

EVENTS = 20


def test_events_dispatched_while_the_handler_is_down_survive_a_broker_restart(
    private_broker, private_amqp_uri, postgres, tmp_path
):
    amqp_uri, vhost = private_amqp_uri
    stack = make_local_stack(
        amqp_uri,
        postgres,
        tmp_path,
        services=["message", "time_consuming"],
        management_url=f"{private_broker.management_url}/api",
    )
    with stack:
        stack.run_jobs()
        stack.start()
        stack.wait_ready()  # the handler's durable queue exists from here on
        stack.stop("time_consuming")

        ids = [
            call_with_retry(
                amqp_uri, "message_service", "receive_message", {"message": f"m{i}", "payload": i}
            )["id"]
            for i in range(EVENTS)
        ]
        assert private_broker.queue_counts(vhost)[HEAVY_PAYLOAD_QUEUE] == (EVENTS, 0)

        private_broker.stop()
        # What a client sees while the broker is gone: an error at once, not a hang.
        with pytest.raises(BROKER_ERRORS), ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=5) as cluster:
            cluster.message_service.get_message(ids[0])
        private_broker.start()

        assert private_broker.queue_counts(vhost)[HEAVY_PAYLOAD_QUEUE] == (EVENTS, 0)
        wait_for(
            lambda: private_broker.admin.consumers(vhost, rpc_queue("message_service")),
            message="message_service to reconnect by itself",
        )
        stack.start("time_consuming")

        def statuses():
            return [call_with_retry(amqp_uri, "message_service", "get_message", id_)["status"] for id_ in ids]

        wait_for(lambda: set(statuses()) == {"done"}, timeout=60, message="every event handled")
        assert stack.instances["message-1"].running, "message_service exited during the restart"
        assert all(call_with_retry(amqp_uri, "time_consuming_service", "get_job", id_) for id_ in ids)
