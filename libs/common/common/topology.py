"""`nameko-topology`: declare the broker topology before any producer starts.

    nameko-topology --config services/time_consuming/config.yaml time_consuming.service

RabbitMQ drops an event published to an exchange with no queue bound to it: a message stored
right after a fresh deploy, before time_consuming_service has started and declared its queue, would
lose its `heavy_payload_event`. This declares, exactly as nameko would (same names, same
arguments, same bindings), every event handler queue of the given services, their retry queues
(`common.retries`) and the dead-letter queue, then exits. Idempotent: run it at every start-up
(the local runner, the compose/k8s jobs).
"""

import argparse
import sys

from kombu import Queue
from nameko.cli.run import import_service
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY
from nameko.containers import ServiceContainer
from nameko.events import BROADCAST, EventHandler
from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc

from common.broker import EXIT_NO_BROKER, no_broker_message, unreachable
from common.config import load_config
from common.dead_letters import connect, dead_letter_queue
from common.settings import DeadLetterSettings, validate

# Queue names, in one place: every tool, probe, test and benchmark asks these functions.


def rpc_queue(service_name: str) -> str:
    """The queue of a service's `@rpc` methods, as nameko names it."""
    return RPC_QUEUE_TEMPLATE.format(service_name)


def handler_queue(source_service: str, event_type: str, handler_service: str, method: str) -> str:
    """The queue of a (service pool) `@event_handler`, as nameko's EventHandler.setup names it."""
    return f"evt-{source_service}-{event_type}--{handler_service}.{method}"


def handler_queues(service_cls, config: dict) -> list[Queue]:
    """The service's event handler queues, bound to their exchanges, with their retry queues."""
    container = ServiceContainer(service_cls, config)
    queues = []
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, EventHandler) and entrypoint.handler_type != BROADCAST:
            entrypoint.setup()  # only builds the kombu Queue (and its exchange); nothing is declared yet
            queues.append(entrypoint.queue)
            queues.extend(getattr(entrypoint, "retry_queues", {}).values())  # common.retries handlers
    return queues


def service_queues(service_cls, config: dict | None = None) -> list[str]:
    """The queues the service's consumers attach to (its RPC queue, one per event handler), named by
    nameko itself. Broadcast handlers' queues are named per instance: there is nothing to predict."""
    # entrypoint setup only names the queues: nothing connects to the broker it is given
    container = ServiceContainer(service_cls, config or {AMQP_URI_CONFIG_KEY: "amqp://"})
    queues = set()
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, Rpc):
            queues.add(rpc_queue(container.service_name))
        elif isinstance(entrypoint, EventHandler) and entrypoint.handler_type != BROADCAST:
            # nameko's own setup only computes the queue's name (no settings read, nothing declared)
            EventHandler.setup(entrypoint)
            queues.add(entrypoint.queue.name)
    return sorted(queues)


def declare(config: dict, services: list) -> list[str]:
    queues = [dead_letter_queue(validate(config, DeadLetterSettings))]
    for service_cls in services:
        queues.extend(handler_queues(service_cls, config))
    with connect(config) as connection:
        channel = connection.default_channel
        for queue in queues:
            queue.bind(channel).declare()  # declares the exchange, the queue and the binding
    return [queue.name for queue in queues]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nameko-topology", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a config.yaml with AMQP_URI, as for `nameko run`")
    parser.add_argument("services", nargs="+", help="service modules, e.g. time_consuming.service")
    args = parser.parse_args(argv)
    sys.path.insert(0, ".")
    config = load_config(args.config)
    services = [cls for module in args.services for cls in import_service(module)]
    amqp_uri = config[AMQP_URI_CONFIG_KEY]
    if problem := unreachable(amqp_uri, ssl=config.get(AMQP_SSL_CONFIG_KEY)):
        print(f"nameko-topology: {no_broker_message(amqp_uri, problem)}", file=sys.stderr)
        return EXIT_NO_BROKER
    try:
        names = declare(config, services)
    except OSError as error:
        print(f"nameko-topology: cannot use the broker: {error}", file=sys.stderr)
        return 2
    for name in names:
        print(f"declared {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
