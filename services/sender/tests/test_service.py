"""sender_service calling a real receiver_service through RpcProxy on the real broker."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import replace_dependencies

from common.errors import InvalidInput
from receiver.service import ReceiverService
from sender.service import SenderService


def test_send_event_reaches_the_receiver_through_rpc_proxy(runner_factory, service_config):
    sender_config, receiver_config = service_config("sender"), service_config("receiver")
    for config, service in [(sender_config, SenderService), (receiver_config, ReceiverService)]:
        runner_factory(config, service).start()

    with ClusterRpcProxy(sender_config, timeout=10) as cluster_rpc:
        reply = cluster_rpc.sender_service.send_event({"message": "Hello World!!"})

    assert reply == "Event Received: {'message': 'Hello World!!'}"


def test_send_event_passes_the_receivers_typed_refusal_back_unchanged(container_factory, service_config):
    """The receiver replaced (nameko's `replace_dependencies`): what send_event does with its answer,
    in a real container on the real broker, without a receiver running."""
    container = container_factory(SenderService, service_config("sender"))
    receiver = replace_dependencies(container, "receiver_service")
    receiver.receive_event.side_effect = InvalidInput("event id must be a string")
    container.start()

    # common.errors registers its classes with nameko: the caller gets InvalidInput itself, not a RemoteError
    with ClusterRpcProxy(container.config, timeout=10) as cluster_rpc, pytest.raises(InvalidInput):
        cluster_rpc.sender_service.send_event({"id": ""})

    receiver.receive_event.assert_called_once_with({"id": ""})
