from datetime import timedelta

from nameko.dependency_providers import Config

from common.db import Database
from common.entrypoints import EventDispatcher, event_handler, rpc
from common.logs import WorkerLog
from common.metrics import Metrics
from common.notifier import Notifier
from common.retries import Delivery
from common.shutdown import GracefulShutdown
from common.storage import Storage
from common.tracing import Tracing
from time_consuming.jobs import Base, get_job
from time_consuming.work import GaveUp, process


class TimeConsumingService:
    name = "time_consuming_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    config = Config()
    db = Database(Base.metadata, migrations="time_consuming")
    storage = Storage()
    notifier = Notifier()
    attempt = Delivery()
    dispatch = EventDispatcher()

    @event_handler("message_service", "heavy_payload_event")
    def time_consuming_event_handler(self, event):
        """Failures raise: retried later, or parked in the dead-letter queue (common.retries)."""
        lease = timedelta(seconds=float(self.config.get("JOB_LEASE_SECONDS", 300)))
        outcome = process(event, self.db.session, self.storage, self.notifier, self.attempt, lease)
        if outcome.message_id is not None:
            self.dispatch("payload_processed", outcome.report())
        if outcome.failed:
            raise GaveUp(outcome.reason)

    @rpc
    def get_job(self, message_id):
        job = get_job(self.db.session, message_id)
        return job.as_dict() if job else None
