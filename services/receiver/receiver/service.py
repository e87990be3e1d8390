import time

from nameko.dependency_providers import Config

from common.db import Database
from common.entrypoints import rpc
from common.errors import InvalidInput
from common.logs import WorkerLog
from common.metrics import Metrics
from common.shutdown import GracefulShutdown
from common.tracing import Tracing
from receiver.receipts import Base, count_receipts, record_receipt


class ReceiverService:
    name = "receiver_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    receipts = Database(Base.metadata, migrations="receiver")
    config = Config()

    @rpc(expected_exceptions=InvalidInput)
    def receive_event(self, event):
        # A plain blocking sleep on purpose: `nameko run` monkey-patches it into a green one,
        # which is the article's concurrency experiment.
        time.sleep(self.config.get("RECEIVER_WORK_SECONDS", 0))
        record_receipt(self.receipts.session, event)
        return f"Event Received: {event}"

    @rpc
    def receipt_count(self):
        return count_receipts(self.receipts.session)
