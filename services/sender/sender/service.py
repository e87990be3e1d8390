from common.messaging import RpcProxy, rpc


class SenderService:
    name = "sender_service"

    receiver_service = RpcProxy("receiver_service")

    @rpc
    def send_event(self, event):
        return self.receiver_service.receive_event(event)
