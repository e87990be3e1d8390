import time

from pydantic import NonNegativeFloat

from common.db import Database
from common.entrypoints import rpc
from common.errors import InvalidInput
from common.logs import WorkerLog
from common.metrics import Metrics
from common.settings import CommonSettings, DatabaseSettings, Settings
from common.shutdown import GracefulShutdown
from common.tracing import Tracing
from receiver.receipts import Base, count_receipts, receipt_of, record_receipt


class ReceiverSettings(CommonSettings, DatabaseSettings):
    DATABASE_URL: str = "sqlite:///receiver.sqlite3"
    RECEIVER_WORK_SECONDS: NonNegativeFloat = 0


class ReceiverService:
    name = "receiver_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    receipts = Database(Base.metadata, migrations="receiver")
    settings = Settings(ReceiverSettings)

    @rpc(expected_exceptions=InvalidInput)
    def receive_event(self, event):
        if self.settings.RECEIVER_WORK_SECONDS:
            # A plain blocking sleep on purpose: `nameko run` monkey-patches it into a green one,
            # which is the article's concurrency experiment. (Not called for 0: a green sleep(0)
            # still yields to the hub, a tenth of a millisecond per call.)
            time.sleep(self.settings.RECEIVER_WORK_SECONDS)
        if (receipt := receipt_of(event)) is not None:
            record_receipt(self.receipts.session, receipt)
        return f"Event Received: {event}"

    @rpc
    def receipt_count(self):
        return count_receipts(self.receipts.session)
