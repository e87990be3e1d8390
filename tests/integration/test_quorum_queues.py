"""Quorum queues with nameko 2.14, on the test broker (RabbitMQ 3.10): what holds.

- RabbitMQ takes a queue's type only from its declaration (`x-queue-type`): no policy sets it.
- A queue declared quorum refuses nameko's own declaration of it (no `x-queue-type`), and the other
  way round: so the type cannot be given by nameko-topology alone; the project's entrypoints
  declare it (`QUEUE_TYPE`), and switching a broker's queues means deleting them first.
- With `QUEUE_TYPE: quorum`, a service's RPC queue, event handler queue, retry queues and the
  dead-letter queue are quorum queues; RPC, events and a retry through a retry queue (message TTL,
  dead-lettered back, at least once) work on them. RPC reply queues stay classic (one per process,
  expiring).
"""

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection, Queue
from nameko.rpc import get_rpc_exchange
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from common.entrypoints import event_handler, rpc
from common.topology import declare
from testkit.processes import wait_for

HANDLED = []


class QuorumProbe:
    name = "quorum_probe"

    @rpc
    def ping(self):
        return "pong"

    @event_handler("quorum_source", "probed")
    def on_probed(self, number):
        HANDLED.append(number)
        if HANDLED.count(number) == 1:
            raise RuntimeError("the first attempt fails: retried through a retry queue")


def queue_types(admin, vhost: str) -> dict[str, str]:
    return {queue["name"]: queue["type"] for queue in admin.queues(vhost)}


def queue_arguments(admin, vhost: str, name: str) -> dict:
    return next(queue["arguments"] for queue in admin.queues(vhost) if queue["name"] == name)


@pytest.fixture
def quorum_config(own_vhost):
    vhost, amqp_uri = own_vhost
    return vhost, {
        "AMQP_URI": amqp_uri,
        "QUEUE_TYPE": "quorum",
        "RETRY_DELAYS": "1",
        "RETRY_MAX_ATTEMPTS": 3,
        "DEAD_LETTER_QUEUE": "dead-letters",
    }


def test_no_policy_sets_the_queue_type(own_vhost, rabbit_admin):
    vhost, _ = own_vhost

    response = rabbit_admin.http.put(
        f"{rabbit_admin.base_url}/policies/{vhost}/quorum",
        json={"pattern": ".*", "definition": {"queue-type": "quorum"}, "apply-to": "queues"},
        timeout=10,
    )

    assert response.status_code == 400
    assert "not recognised policy settings" in response.text


def test_rabbitmq_3_10_ignores_a_vhost_default_queue_type(own_vhost, rabbit_admin):
    version = rabbit_admin.request("GET", "overview")["rabbitmq_version"]
    if not version.startswith("3.10."):
        pytest.skip(f"what RabbitMQ 3.10 does; this broker is {version}")
    vhost, amqp_uri = own_vhost
    rabbit_admin.request("PUT", f"vhosts/{vhost}", json={"default_queue_type": "quorum"})

    with Connection(amqp_uri) as connection:
        Queue("plain", durable=True).bind(connection.default_channel).declare()

    assert queue_types(rabbit_admin, vhost)["plain"] == "classic"


@pytest.mark.parametrize("options", [{"auto_delete": True}, {"exclusive": True}], ids=str)
def test_a_quorum_queue_cannot_auto_delete_nor_be_exclusive(own_vhost, options):
    # as nameko's BROADCAST and SINGLETON handler queues are: those stay classic
    _, amqp_uri = own_vhost
    queue = Queue("handler", durable=True, queue_arguments={"x-queue-type": "quorum"}, **options)

    with Connection(amqp_uri) as connection, pytest.raises(PreconditionFailed):
        queue.bind(connection.default_channel).declare()


@pytest.mark.parametrize(
    ("first", "then"),
    [({"x-queue-type": "quorum"}, None), (None, {"x-queue-type": "quorum"})],
    ids=["quorum then nameko's", "nameko's then quorum"],
)
def test_a_queue_refuses_a_declaration_of_another_type(own_vhost, first, then):
    # Hence QUEUE_TYPE in the services' own declarations; and a switch means deleting the queues first.
    _, amqp_uri = own_vhost
    config = {"AMQP_URI": amqp_uri}

    def rpc_queue(arguments):  # as nameko.rpc.RpcConsumer.setup builds it, with `arguments`
        exchange, routing_key = get_rpc_exchange(config), "quorum_probe.*"
        return Queue("rpc-quorum_probe", exchange, routing_key, durable=True, queue_arguments=arguments)

    with Connection(amqp_uri) as connection:
        rpc_queue(first).bind(connection.default_channel).declare()
    with Connection(amqp_uri) as connection, pytest.raises(PreconditionFailed, match="x-queue-type"):
        rpc_queue(then).bind(connection.default_channel).declare()


def test_a_service_runs_on_quorum_queues(container_factory, rabbit_admin, quorum_config):
    vhost, config = quorum_config
    HANDLED.clear()
    declare(config, [QuorumProbe])  # as the topology job does, before the service starts
    container = container_factory(QuorumProbe, config)
    container.start()

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        answer = cluster_rpc.quorum_probe.ping()
        reply_queues = [name for name in queue_types(rabbit_admin, vhost) if name.startswith("rpc.reply-")]
    event_dispatcher(config)("quorum_source", "probed", 7)
    wait_for(lambda: HANDLED == [7, 7], message="the event handled on its retry")
    types = queue_types(rabbit_admin, vhost)

    assert answer == "pong"
    assert {name: types[name] for name in types if not name.startswith("rpc.reply-")} == {
        "rpc-quorum_probe": "quorum",
        "evt-quorum_source-probed--quorum_probe.on_probed": "quorum",
        "evt-quorum_source-probed--quorum_probe.on_probed.retry-1s": "quorum",
        "dead-letters": "quorum",
    }
    assert reply_queues and all(types[name] == "classic" for name in reply_queues)
    retry_arguments = queue_arguments(
        rabbit_admin, vhost, "evt-quorum_source-probed--quorum_probe.on_probed.retry-1s"
    )
    assert (
        retry_arguments["x-dead-letter-strategy"] == "at-least-once"
    )  # a retry is never lost on its way back
