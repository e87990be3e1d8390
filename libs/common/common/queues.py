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

from common.settings import QueueSettings


def durable_queue_arguments(settings: QueueSettings) -> dict:
    """The declaration arguments of a service's durable queues for its `QUEUE_TYPE`."""
    return {} if settings.QUEUE_TYPE == "classic" else {"x-queue-type": settings.QUEUE_TYPE}


def with_queue_type(queue, settings: QueueSettings):
    """`queue` (a kombu Queue nameko built) declared with the service's queue type."""
    queue.queue_arguments = {**(queue.queue_arguments or {}), **durable_queue_arguments(settings)}
    return queue
