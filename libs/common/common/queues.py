"""The type of the durable queues the services declare: `classic` (nameko's own) or `quorum`.

Why: RabbitMQ 4.x has no mirrored classic queues; a queue that must survive a node is a quorum
queue (replicated by Raft). RabbitMQ takes the type only from the declaration (`x-queue-type`):
it is no policy key, and a queue declared quorum beforehand (by nameko-topology) refuses nameko's
own declaration without the argument (PRECONDITION_FAILED, RabbitMQ 3.10). So the project's
entrypoints (common.messaging's `rpc`, common.retries' `event_handler`, its retry queues and the
dead-letter queue) declare the type the config key `QUEUE_TYPE` names; `classic` adds no argument,
so the declarations stay what nameko's are. Not for RPC reply queues (one per process, expiring):
those stay classic.
"""

QUEUE_TYPE_CONFIG_KEY = "QUEUE_TYPE"
QUEUE_TYPES = ("classic", "quorum")


def durable_queue_arguments(config: dict) -> dict:
    """The declaration arguments of a service's durable queues for the config's `QUEUE_TYPE`."""
    queue_type = str(config.get(QUEUE_TYPE_CONFIG_KEY) or "classic").lower()
    if queue_type not in QUEUE_TYPES:
        raise ValueError(
            f"{QUEUE_TYPE_CONFIG_KEY} must be one of {', '.join(QUEUE_TYPES)}, not {queue_type!r}"
        )
    return {} if queue_type == "classic" else {"x-queue-type": queue_type}


def with_queue_type(queue, config: dict):
    """`queue` (a kombu Queue nameko built) declared with the config's queue type."""
    queue.queue_arguments = {**(queue.queue_arguments or {}), **durable_queue_arguments(config)}
    return queue
