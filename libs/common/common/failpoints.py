"""Fail points: named places where a test makes a real process fail, exactly there.

As TiKV's `fail` or etcd's gofail: each point does nothing unless the environment variable
`FAILPOINTS` arms it, so a test can kill a real `nameko run` process after a commit and before
the ack, or after the webhook answered and before the job is recorded, and then check what the
restarted process does.

    FAILPOINTS="message.after_commit=kill"                   SIGKILL this process at that point
    FAILPOINTS="time_consuming.after_notify=raise"           raise FailPointError there
    FAILPOINTS="message.before_relay=sleep(2);x.y=kill"      several points, `;`-separated

In code: `failpoint("message.after_commit")`. Points are listed in `POINTS`, so a test that arms
a misspelt name fails at once instead of never firing.
"""

import os
import re
import signal
import time

ENV = "FAILPOINTS"

POINTS = {
    "message.before_commit": "receive_message: the message is written in its transaction, not committed",
    "message.after_commit": "receive_message: the message is committed, the RPC reply not sent yet",
    "message.before_relay": "the outbox relay is about to read unsent events (request path and timer)",
    "message.before_outbox_mark": "the outbox relay dispatched an event, not yet marked sent",
    "time_consuming.after_upload": "the payload is in object storage, the job not yet recorded",
    "time_consuming.after_notify": "the webhook answered, the job not yet recorded as notified",
    "consumer.before_ack": "an event's handler succeeded (its effects committed), the event not yet acked",
    "consumer.after_park": "a failed event is parked (confirmed by the broker), the original not yet acked",
}

ACTION = re.compile(r"^(kill|raise|sleep\((\d+(?:\.\d+)?)\))$")


class FailPointError(RuntimeError):
    """Raised by a point armed with `raise`."""


def parse(spec: str) -> dict[str, str]:
    armed = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, _, action = item.partition("=")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown fail point {name!r}; known: {', '.join(sorted(POINTS))}")
        if not ACTION.match(action):
            raise ValueError(f"{ENV}: {name}: action must be kill, raise or sleep(SECONDS), not {action!r}")
        armed[name] = action
    return armed


ARMED = parse(os.environ.get(ENV, ""))


def failpoint(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown fail point {name!r}: add it to common.failpoints.POINTS")
    action = ARMED.get(name)
    if action is None:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FailPointError(f"fail point {name}")
    else:
        time.sleep(float(ACTION.match(action).group(2)))
