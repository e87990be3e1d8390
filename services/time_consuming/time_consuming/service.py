from datetime import timedelta

from pydantic import PositiveFloat

from common.db import Database
from common.entrypoints import EventDispatcher, event_handler, rpc
from common.logs import WorkerLog
from common.metrics import Metrics
from common.notifier import Notifier
from common.retries import Delivery
from common.settings import (
    CommonSettings,
    DatabaseSettings,
    RetrySettings,
    Settings,
    StorageSettings,
    WebhookSettings,
)
from common.shutdown import GracefulShutdown
from common.storage import Storage
from common.tracing import Tracing
from time_consuming.jobs import Base, get_job
from time_consuming.work import GaveUp, process


class TimeConsumingSettings(
    CommonSettings, DatabaseSettings, StorageSettings, WebhookSettings, RetrySettings
):
    DATABASE_URL: str = "sqlite:///time_consuming.sqlite3"
    JOB_LEASE_SECONDS: PositiveFloat = 300


class TimeConsumingService:
    name = "time_consuming_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    settings = Settings(TimeConsumingSettings)
    db = Database(Base.metadata, migrations="time_consuming")
    storage = Storage()
    notifier = Notifier()
    attempt = Delivery()
    dispatch = EventDispatcher()

    @event_handler("message_service", "heavy_payload_event")
    def time_consuming_event_handler(self, event):
        """Failures raise: retried later, or parked in the dead-letter queue (common.retries)."""
        lease = timedelta(seconds=self.settings.JOB_LEASE_SECONDS)
        outcome = process(event, self.db.session, self.storage, self.notifier, self.attempt, lease)
        if outcome.message_id is not None:
            self.dispatch("payload_processed", outcome.report())
        if outcome.failed:
            raise GaveUp(outcome.reason)

    @rpc
    def get_job(self, message_id):
        job = get_job(self.db.session, message_id)
        return job.as_dict() if job else None
