import logging
from datetime import timedelta

from pydantic import PositiveFloat

from common.contracts import PayloadProcessed, parse_event
from common.db import Database
from common.entrypoints import PUBLISH_ONCE, EventDispatcher, event_handler, http, rpc, timer
from common.errors import Conflict, InvalidInput, NotFound
from common.logs import WorkerLog
from common.messaging import RequestId
from common.metrics import Metrics
from common.schemas import NewMessage, parse
from common.settings import CommonSettings, DatabaseSettings, RetrySettings, Settings, WebSettings
from common.shutdown import GracefulShutdown
from common.tracing import Tracing
from common.web import request_json
from message.messages import (
    PENDING,
    Base,
    OutboxBacklog,
    claim_stuck_messages,
    get_message,
    heavy_payload_event,
    prune_sent,
    record_outcome,
    relay,
    store_message,
    with_idempotency_key,
)

logger = logging.getLogger(__name__)
OUTBOX_RELAY_SECONDS = 2
OUTBOX_PRUNE_SECONDS = 600


# The outbox's backlog for the metrics: one per process (the metrics registry is too).
backlog = OutboxBacklog()


class MessageSettings(CommonSettings, DatabaseSettings, WebSettings, RetrySettings):
    DATABASE_URL: str = "sqlite:///message.sqlite3"
    OUTBOX_RETENTION_HOURS: PositiveFloat = 24


class MessageService:
    name = "message_service"

    settings = Settings(MessageSettings)
    log = WorkerLog()
    metrics = Metrics()
    graceful = GracefulShutdown()
    tracing = Tracing()
    db = Database(Base.metadata, migrations="message")
    dispatch = EventDispatcher()
    # The outbox's: one try (the timer is its retry, so a request never waits on a broker that is
    # down); `mandatory` with confirms, so an event that reaches no queue stays unsent.
    outbox = EventDispatcher(mandatory=True, use_confirms=True, **PUBLISH_ONCE)
    request_id = RequestId()

    @rpc(expected_exceptions=(InvalidInput, Conflict))
    def receive_message(self, event):
        # With its event, in the outbox; once per request (idempotency key, or the RPC request's id).
        message = store_message(self.db.session, parse(NewMessage, event), self.request_id)
        if message.status == PENDING:
            self.relay_outbox()
        return message.first_result

    def relay_outbox(self):
        try:
            relay(self.db.session, self.outbox)
        except Exception as error:  # the message and its event are committed: the timer sends it later
            # One line, no traceback: while the broker is down this repeats every OUTBOX_RELAY_SECONDS.
            logger.warning("outbox relay failed (%r); relay_unsent tries again", error)

    @timer(interval=OUTBOX_RELAY_SECONDS)
    def relay_unsent(self):
        """Events left in the outbox by a failed relay (broker down, a crash after the commit); then
        what is left unsent is counted for the metrics, here rather than on each request."""
        self.relay_outbox()
        try:
            backlog.measure(self.db.session)
        except Exception as error:  # the database is down: the age keeps growing from the last count
            logger.warning("outbox backlog not counted (%r)", error)

    @timer(interval=OUTBOX_PRUNE_SECONDS)
    def prune_outbox(self):
        prune_sent(self.db.session, timedelta(hours=self.settings.OUTBOX_RETENTION_HOURS))

    def time_consuming_function(self, message):
        self.dispatch("heavy_payload_event", heavy_payload_event(message))

    @rpc(expected_exceptions=NotFound)
    def get_message(self, message_id):
        return get_message(self.db.session, message_id).as_dict()

    @rpc(expected_exceptions=InvalidInput)
    def redispatch_stuck(self, older_than_seconds=600):
        """Hand messages stuck in `pending` to time_consuming_service again; the cron job calls this."""
        if not isinstance(older_than_seconds, int | float) or older_than_seconds < 0:
            raise InvalidInput("older_than_seconds must be a number of seconds, 0 or more")
        stuck = claim_stuck_messages(self.db.session, timedelta(seconds=older_than_seconds))
        for message in stuck:
            self.time_consuming_function(message)
        return [message.id for message in stuck]

    @event_handler("time_consuming_service", "payload_processed", permanent=(InvalidInput, NotFound))
    def on_payload_processed(self, outcome):
        """Invalid or unknown: parked at once; a database error: retried later (common.retries)."""
        report = parse_event(PayloadProcessed, outcome)
        record_outcome(self.db.session, report.message_id, report.status, report.reason)

    @http("POST", "/messages", expected_exceptions=(InvalidInput, Conflict))
    def post_message(self, request):
        event = with_idempotency_key(request_json(request), request.headers.get("Idempotency-Key"))
        return 201, self.receive_message(event)

    @http("GET", "/messages/<string:message_id>", expected_exceptions=NotFound)
    def get_message_http(self, request, message_id):
        return self.get_message(message_id)

    @http("GET", "/health")
    def health(self, request):
        self.db.ping()
        return {"status": "ok", "service": self.name}
