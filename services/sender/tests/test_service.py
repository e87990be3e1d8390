"""sender_service calling a real receiver_service through RpcProxy on the real broker."""

from nameko.standalone.rpc import ClusterRpcProxy

from receiver.service import ReceiverService
from sender.service import SenderService


def test_send_event_reaches_the_receiver_through_rpc_proxy(runner_factory, service_config):
    sender_config, receiver_config = service_config("sender"), service_config("receiver")
    for config, service in [(sender_config, SenderService), (receiver_config, ReceiverService)]:
        runner_factory(config, service).start()

    with ClusterRpcProxy(sender_config, timeout=10) as cluster_rpc:
        reply = cluster_rpc.sender_service.send_event({"message": "Hello World!!"})

    assert reply == "Event Received: {'message': 'Hello World!!'}"
