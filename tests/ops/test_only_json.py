"""Only JSON is accepted: a pickled request (pickle runs code when loaded) is refused, not executed."""

from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ClusterRpcProxy

from common.topology import rpc_queue
from testkit.processes import ServiceProcess, wait_for
from tests.ops.logs import consumers_now, waiting_in, worker_lines


class Exploit:
    """Unpickling this creates a file: proof that something ran code we sent."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_rpc_request_is_rejected_and_the_service_keeps_serving(amqp_uri, postgres, tmp_path):
    receiver = ServiceProcess("receiver", {"AMQP_URI": amqp_uri, "DATABASE_URL": postgres()}, tmp_path)
    marker = tmp_path / "pickle-was-loaded"
    try:
        wait_for(lambda: consumers_now(amqp_uri, rpc_queue("receiver_service")), timeout=60)
        with Connection(amqp_uri) as connection:
            Producer(connection).publish(
                {"args": [Exploit(marker)], "kwargs": {}},
                exchange=Exchange("nameko-rpc", type="topic", durable=True),
                routing_key="receiver_service.receive_event",
                serializer="pickle",
                reply_to="nowhere",
                correlation_id="pickled",
            )
        wait_for(lambda: "ContentDisallowed" in receiver.output(), message="the receiver to refuse it")

        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster_rpc:
            assert cluster_rpc.receiver_service.receive_event("json") == "Event Received: json"
    finally:
        exit_code = receiver.stop()

    assert not marker.exists()
    assert len(worker_lines(receiver)) == 1  # only the JSON call ran
    assert exit_code == 0, receiver.output()
    # Acked and dropped (kombu's decode-error handling), not requeued into a poison loop.
    assert waiting_in(amqp_uri, rpc_queue("receiver_service")) == 0
