"""The time-consuming work for one `heavy_payload_event`: upload the payload, then notify the webhook."""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter

from common.contracts import HeavyPayloadEvent, OutcomeStatus, event_problem
from common.failpoints import failpoint
from common.retries import Attempt, describe
from time_consuming.jobs import PENDING, claim_job, record_failed, record_notified, record_uploaded, release

log = logging.getLogger(__name__)
JOBS = Counter(
    "time_consuming_jobs",
    "Deliveries of heavy_payload_event by what became of them: done (the work done now), "
    "already_done (an earlier delivery did it), failed (gave up), retried (tried again later)",
    ["outcome"],
)


class GaveUp(Exception):
    """The job failed for good (a webhook's 4xx, an invalid event, the last attempt): park the event."""

    permanent = True


@dataclass
class Outcome:
    message_id: str | None
    status: OutcomeStatus
    reason: str | None = None
    already_done: bool = False  # an earlier delivery finished the job: nothing was done now

    @property
    def failed(self) -> bool:
        return self.status == OutcomeStatus.FAILED

    @property
    def counted_as(self) -> str:
        return "already_done" if self.already_done else self.status

    def report(self) -> dict:
        """The `payload_processed` event message_service records."""
        return {"message_id": self.message_id, "status": self.status, "reason": self.reason}


def object_key(message_id: str) -> str:
    return f"payloads/{message_id}.json"


def invalid_event(event) -> str | None:
    return event_problem(HeavyPayloadEvent, event)  # the published contract (docs/contracts/asyncapi.yaml)


def process(event, session, storage, notifier, attempt: Attempt, lease: timedelta) -> Outcome:
    """Does the work once per message id; raises to have the event retried later.

    When an earlier delivery already finished it, the outcome is "done" again without new work:
    the redelivery may come from the cron job because message_service never heard the first report.
    A transient failure (database, S3, webhook 5xx or timeout, `JobBusy`) raises, unless this is the
    last attempt: then, as for a permanent one, the job is recorded failed and the outcome says so.
    """
    try:
        outcome = do_the_work(event, session, storage, notifier, attempt, lease)
    except Exception:
        JOBS.labels("retried").inc()
        raise
    JOBS.labels(outcome.counted_as).inc()
    return outcome


def do_the_work(event, session, storage, notifier, attempt: Attempt, lease: timedelta) -> Outcome:
    """`process` without the counting."""
    if reason := invalid_event(event):
        message_id = event.get("message_id") if isinstance(event, dict) else None
        return Outcome(message_id if isinstance(message_id, str) else None, OutcomeStatus.FAILED, reason)
    message_id = str(event["message_id"])
    claim = claim_job(session, message_id, f"delivery/{attempt.delivery}", lease)
    if claim is None:
        return Outcome(message_id, OutcomeStatus.DONE, already_done=True)
    try:
        key = claim.object_key
        if claim.state == PENDING:
            key = storage.put(object_key(message_id), json.dumps(event["payload"]).encode())
            failpoint("time_consuming.after_upload")
            record_uploaded(session, message_id, key)
        notifier.notify(
            {"message_id": message_id, "object_key": key, "outcome": "uploaded"},
            idempotency_key=message_id,
        )
        failpoint("time_consuming.after_notify")
        record_notified(session, message_id)
    except Exception as error:
        if getattr(error, "permanent", False) or attempt.final:
            reason = str(error) if getattr(error, "permanent", False) else describe(error)
            if not getattr(error, "permanent", False):
                reason = f"gave up after {attempt.number} attempt(s): {reason}"
            record_failed(session, message_id, reason)
            return Outcome(message_id, OutcomeStatus.FAILED, reason)
        try:
            release(session, message_id, claim.owner, describe(error))
        except Exception:  # the database is what failed: the lease expires by itself
            log.warning("could not release job %s", message_id, exc_info=True)
        raise
    return Outcome(message_id, OutcomeStatus.DONE)
