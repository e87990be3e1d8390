"""The time-consuming work for one `heavy_payload_event`: upload the payload, then notify the webhook."""

import json
from dataclasses import dataclass

from common.contracts import HeavyPayloadEvent, event_problem
from common.notifier import NotificationError
from time_consuming.jobs import FAILED, NOTIFIED, UPLOADED, claim_job


@dataclass
class Outcome:
    message_id: str | None
    status: str  # "done" or "failed"
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def report(self) -> dict:
        """The `payload_processed` event message_service records."""
        return {"message_id": self.message_id, "status": self.status, "reason": self.reason}


def object_key(message_id: str) -> str:
    return f"payloads/{message_id}.json"


def invalid_event(event) -> str | None:
    return event_problem(HeavyPayloadEvent, event)  # the published contract (docs/contracts/asyncapi.yaml)


def process(event, session, storage, notifier) -> Outcome:
    """Does the work once per message id.

    When an earlier delivery already finished it, the outcome is "done" again without new work:
    the redelivery may come from the cron job because message_service never heard the first report.
    """
    if reason := invalid_event(event):
        message_id = event.get("message_id") if isinstance(event, dict) else None
        return Outcome(message_id if isinstance(message_id, str) else None, "failed", reason)
    message_id = str(event["message_id"])
    with claim_job(session, message_id) as job:
        if job is None:
            return Outcome(message_id, "done")
        try:
            job.object_key = storage.put(object_key(message_id), json.dumps(event["payload"]).encode())
            job.state = UPLOADED
            notifier.notify(
                {"message_id": message_id, "object_key": job.object_key, "outcome": "uploaded"},
                idempotency_key=message_id,
            )
            job.state = NOTIFIED
        except NotificationError as error:
            job.state, job.last_error = FAILED, str(error)
        except Exception as error:  # storage errors (after botocore's retries), bugs: park, never loop
            job.state, job.last_error = FAILED, f"{type(error).__name__}: {error}"
        if job.state == FAILED:
            return Outcome(message_id, "failed", job.last_error)
    return Outcome(message_id, "done")
