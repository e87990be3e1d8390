from nameko.events import event_handler

from common.db import Database
from common.logs import WorkerLog
from common.messaging import EventDispatcher, rpc
from common.metrics import Metrics
from common.shutdown import GracefulShutdown
from time_consuming.jobs import Base, claim_job, get_job


class TimeConsumingService:
    name = "time_consuming_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    db = Database(Base.metadata, migrations="time_consuming")
    dispatch = EventDispatcher()

    @event_handler("message_service", "heavy_payload_event")
    def time_consuming_event_handler(self, event):
        with claim_job(self.db, event["message_id"]) as job:
            if job is None:
                return  # a redelivery of an event already handled
        self.dispatch("payload_processed", {"message_id": job.message_id, "status": "done"})

    @rpc
    def get_job(self, message_id):
        job = get_job(self.db, message_id)
        return job.as_dict() if job else None
