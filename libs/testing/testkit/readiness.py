"""When is a service instance ready? When its consumers are attached to every queue it serves.

The queues come from the service class itself (its `@rpc` and `@event_handler` entrypoints, named
as nameko names them). The broker says who consumes them: the management API lists each
consumer's connection, which is matched to the instance's own TCP connections, so one instance
of several is known to be ready. Without the management API, an AMQP passive declare gives a
consumer count per queue, which is compared with the number of running instances.
"""

from urllib.parse import quote, unquote, urlparse

import psutil
import requests
from kombu import Connection
from nameko.cli.run import import_service

from common import topology

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost"


def service_queues(module: str) -> dict[str, list[str]]:
    """{service name: [queue names its consumers attach to]} for the classes `nameko run module` runs."""
    return {service_cls.name: topology.service_queues(service_cls) for service_cls in import_service(module)}


def broker_ports(pid: int, amqp_port: int) -> set[int]:
    """The local ports of the process's connections to the broker."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in connections if c.raddr and c.raddr.port == amqp_port}


class Broker:
    """Who consumes what, on the vhost of `amqp_uri`."""

    def __init__(self, amqp_uri: str | None = None, management_url: str | None = None):
        self.amqp_uri = amqp_uri or DEFAULT_AMQP_URI
        parsed = urlparse(self.amqp_uri)
        self.amqp_port = parsed.port or 5672
        self.vhost = unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
        self.auth = (unquote(parsed.username or "guest"), unquote(parsed.password or "guest"))
        self.management_url = management_url or f"http://{parsed.hostname or 'localhost'}:15672/api"
        self._management: bool | None = None

    @property
    def has_management(self) -> bool:
        if self._management is None:
            try:
                requests.get(f"{self.management_url}/overview", auth=self.auth, timeout=3).raise_for_status()
                self._management = True
            except requests.RequestException:
                self._management = False
        return self._management

    def consumer_ports(self, queue: str) -> set[int] | None:
        """Peer ports of the queue's consumers (management API); None when the queue does not exist."""
        response = requests.get(
            f"{self.management_url}/queues/{quote(self.vhost, safe='')}/{quote(queue, safe='')}",
            auth=self.auth,
            timeout=5,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        # channel_details is an empty list, not a dict, for a channel that is closing
        details = [
            consumer.get("channel_details") for consumer in response.json().get("consumer_details", [])
        ]
        return {detail.get("peer_port") for detail in details if isinstance(detail, dict)}

    def consumer_count(self, queue: str) -> int:
        """Consumers on the queue, by AMQP passive declare (0 when the queue does not exist yet)."""
        with Connection(self.amqp_uri, connect_timeout=5) as connection:
            channel = connection.channel()
            try:
                return channel.queue_declare(queue, passive=True).consumer_count
            except Exception:  # the broker closes the channel with 404 NOT_FOUND
                return 0

    def is_consuming(self, pid: int, queues: list[str], instances_running: int = 1) -> bool:
        """Whether process `pid` has a consumer on each of `queues`."""
        if not queues:
            return bool(broker_ports(pid, self.amqp_port))
        if self.has_management:
            ports = broker_ports(pid, self.amqp_port)
            return bool(ports) and all(ports & (self.consumer_ports(queue) or set()) for queue in queues)
        return all(self.consumer_count(queue) >= instances_running for queue in queues)
