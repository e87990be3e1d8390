from common.entrypoints import RpcProxy, rpc
from common.errors import InvalidInput
from common.logs import WorkerLog
from common.metrics import Metrics
from common.settings import CommonSettings, Settings
from common.shutdown import GracefulShutdown
from common.tracing import Tracing


class SenderService:
    name = "sender_service"

    settings = Settings(CommonSettings)  # nothing of its own: what every service reads
    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    receiver_service = RpcProxy("receiver_service")

    @rpc(expected_exceptions=InvalidInput)  # the receiver's verdict on the event, passed back
    def send_event(self, event):
        return self.receiver_service.receive_event(event)
