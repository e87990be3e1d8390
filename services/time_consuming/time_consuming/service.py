from nameko.events import event_handler

from common.db import Database
from common.dead_letters import DeadLetters
from common.logs import WorkerLog
from common.messaging import EventDispatcher, rpc
from common.metrics import Metrics
from common.notifier import Notifier
from common.shutdown import GracefulShutdown
from common.storage import Storage
from common.tracing import Tracing
from time_consuming.jobs import Base, get_job
from time_consuming.work import process


class TimeConsumingService:
    name = "time_consuming_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    db = Database(Base.metadata, migrations="time_consuming")
    storage = Storage()
    notifier = Notifier()
    dead_letters = DeadLetters()
    dispatch = EventDispatcher()

    @event_handler("message_service", "heavy_payload_event")
    def time_consuming_event_handler(self, event):
        outcome = process(event, self.db, self.storage, self.notifier)
        if outcome.failed:  # parked with its reason, then acked: never lost, never looping
            self.dead_letters.park(event, outcome.reason, "message_service", "heavy_payload_event")
        if outcome.message_id is not None:
            self.dispatch("payload_processed", outcome.report())

    @rpc
    def get_job(self, message_id):
        job = get_job(self.db, message_id)
        return job.as_dict() if job else None
