"""A RabbitMQ vhost of a run's own (a demo, a benchmark), made and removed through the management API."""

import os
import uuid

import requests

AUTH = ("guest", "guest")


class Vhost:
    """`with Vhost(amqp_uri, management_url, "bench") as vhost:` gives `vhost.name` and `vhost.amqp_uri`."""

    def __init__(self, amqp_uri: str, management_url: str, prefix: str):
        self.name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.management_url = management_url
        self.amqp_uri = amqp_uri.rstrip("/") + "/" + self.name

    def __enter__(self):
        requests.put(f"{self.management_url}/vhosts/{self.name}", auth=AUTH, timeout=10).raise_for_status()
        requests.put(
            f"{self.management_url}/permissions/{self.name}/guest",
            auth=AUTH,
            json={"configure": ".*", "write": ".*", "read": ".*"},
            timeout=10,
        ).raise_for_status()
        return self

    def __exit__(self, *exc_info):
        requests.delete(f"{self.management_url}/vhosts/{self.name}", auth=AUTH, timeout=10)
