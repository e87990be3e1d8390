import logging
from datetime import timedelta

from nameko.timer import timer
from sqlalchemy import text

from common.contracts import PayloadProcessed, parse_event
from common.db import Database
from common.errors import InvalidInput, NotFound
from common.logs import WorkerLog
from common.messaging import EventDispatcher, rpc
from common.metrics import Metrics
from common.retries import event_handler
from common.schemas import NewMessage, parse
from common.shutdown import GracefulShutdown
from common.tracing import Tracing
from common.web import http, request_json
from message.messages import (
    PENDING,
    Base,
    claim_stuck_messages,
    get_message,
    heavy_payload_event,
    record_outcome,
    relay,
    store_message,
)

logger = logging.getLogger(__name__)
OUTBOX_RELAY_SECONDS = 2


class MessageService:
    name = "message_service"

    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    db = Database(Base.metadata, migrations="message")
    dispatch = EventDispatcher()

    @rpc(expected_exceptions=InvalidInput)
    def receive_message(self, event):
        message = store_message(self.db, parse(NewMessage, event))  # with its event, in the outbox
        if message.status == PENDING:
            self.relay_outbox()
        return {"id": message.id, "status": message.status}

    def relay_outbox(self):
        try:
            relay(self.db, self.dispatch)
        except Exception:  # the message and its event are committed: the timer sends it later
            logger.warning("outbox relay failed; relay_unsent will retry", exc_info=True)

    @timer(interval=OUTBOX_RELAY_SECONDS)
    def relay_unsent(self):
        """Events left in the outbox by a failed relay (broker down, a crash after the commit)."""
        relay(self.db, self.dispatch)

    def time_consuming_function(self, message):
        self.dispatch("heavy_payload_event", heavy_payload_event(message))

    @rpc(expected_exceptions=NotFound)
    def get_message(self, message_id):
        return get_message(self.db, message_id).as_dict()

    @rpc(expected_exceptions=InvalidInput)
    def redispatch_stuck(self, older_than_seconds=600):
        """Hand messages stuck in `pending` to time_consuming_service again; the cron job calls this."""
        if not isinstance(older_than_seconds, int | float) or older_than_seconds < 0:
            raise InvalidInput("older_than_seconds must be a number of seconds, 0 or more")
        stuck = claim_stuck_messages(self.db, timedelta(seconds=older_than_seconds))
        for message in stuck:
            self.time_consuming_function(message)
        return [message.id for message in stuck]

    @event_handler("time_consuming_service", "payload_processed", permanent=(InvalidInput, NotFound))
    def on_payload_processed(self, outcome):
        """Invalid or unknown: parked at once; a database error: retried later (common.retries)."""
        report = parse_event(PayloadProcessed, outcome)
        record_outcome(self.db, report.message_id, report.status, report.reason)

    @http("POST", "/messages", expected_exceptions=InvalidInput)
    def post_message(self, request):
        return 201, self.receive_message(request_json(request))

    @http("GET", "/messages/<string:message_id>", expected_exceptions=NotFound)
    def get_message_http(self, request, message_id):
        return self.get_message(message_id)

    @http("GET", "/health")
    def health(self, request):
        self.db.execute(text("SELECT 1"))
        return {"status": "ok", "service": self.name}
