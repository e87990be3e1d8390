"""RabbitMQ administration for tests, demos and benchmarks: vhosts of a run's own, queue stats.

One helper for the management HTTP API. Its address and login come from nameko's own pytest options
(`--rabbit-ctl-uri`, default `http://guest:guest@localhost:15672`; `--amqp-uri` for the broker), or,
outside pytest, from `RABBIT_CTL_URI` in the environment. Names made here carry the pid of the run
that made them, so leftovers of a run that was killed are recognised and removed.
"""

import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import psutil
import requests

from common.topology import handler_queue

DEFAULT_CTL_URI = "http://guest:guest@localhost:15672"
# time_consuming_service's queue for message_service's heavy_payload_event, which many tests watch
HEAVY_PAYLOAD_QUEUE = handler_queue(
    "message_service", "heavy_payload_event", "time_consuming_service", "time_consuming_event_handler"
)
LEFTOVER = re.compile(r"^nameko_[a-z]+_(\d+)_[0-9a-f]{8}$")


def run_name(kind: str = "test") -> str:
    """A vhost or database name of this process's own: `nameko_<kind>_<pid>_<random>`."""
    return f"nameko_{kind}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def is_leftover(name: str) -> bool:
    """Made by `run_name` in a process that is gone."""
    match = LEFTOVER.match(name)
    return bool(match) and not psutil.pid_exists(int(match.group(1)))


def with_vhost(amqp_uri: str, vhost: str) -> str:
    """`amqp_uri` pointed at another vhost (`pyamqp://` as nameko's option spells it is `amqp://`)."""
    parsed = urlparse(amqp_uri)
    return parsed._replace(scheme="amqp", path=f"/{vhost}").geturl()


def broker_address(amqp_uri: str) -> tuple[str, int]:
    """(host, port) of the broker, for what sits between a client and it (a proxy that cuts)."""
    parsed = urlparse(amqp_uri)
    return parsed.hostname or "localhost", parsed.port or 5672


class RabbitAdmin:
    """The management HTTP API, for what AMQP cannot do: vhosts, permissions, queue stats, consumers."""

    def __init__(self, ctl_uri: str | None = None):
        parsed = urlparse(ctl_uri or os.environ.get("RABBIT_CTL_URI", DEFAULT_CTL_URI))
        self.base_url = f"{parsed.scheme}://{parsed.hostname}:{parsed.port or 15672}/api"
        self.http = requests.Session()
        self.http.auth = (unquote(parsed.username or "guest"), unquote(parsed.password or "guest"))

    def request(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.base_url}/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_vhost(self, vhost: str, user: str = "guest"):
        self.request("PUT", f"vhosts/{vhost}")
        self.request(
            "PUT", f"permissions/{vhost}/{user}", json={"configure": ".*", "write": ".*", "read": ".*"}
        )

    def delete_vhost(self, vhost: str):
        self.http.delete(f"{self.base_url}/vhosts/{vhost}", timeout=10)

    def vhosts(self) -> list[str]:
        return [vhost["name"] for vhost in self.request("GET", "vhosts")]

    def remove_leftovers(self):
        for vhost in self.vhosts():
            if is_leftover(vhost):
                self.delete_vhost(vhost)

    def queues(self, vhost: str) -> list[dict]:
        return self.request("GET", f"queues/{vhost}")

    def consumers(self, vhost: str, queue: str) -> int:
        for found in self.queues(vhost):
            if found["name"] == queue:
                return found.get("consumers", 0)
        return 0

    def purge(self, vhost: str, queue: str):
        self.http.delete(f"{self.base_url}/queues/{vhost}/{queue}/contents", timeout=10)

    @contextmanager
    def scratch_vhost(self, amqp_uri: str, kind: str = "test"):
        """`with admin.scratch_vhost(amqp_uri, "bench") as scratch:` a vhost of its own
        (`scratch.name`, `scratch.amqp_uri`), removed when the block ends."""
        name = run_name(kind)
        self.create_vhost(name, user=unquote(urlparse(amqp_uri).username or "guest"))
        try:
            yield ScratchVhost(name, with_vhost(amqp_uri, name))
        finally:
            self.delete_vhost(name)


@dataclass(frozen=True)
class ScratchVhost:
    name: str
    amqp_uri: str
