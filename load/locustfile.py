"""Load against a running stack: an HTTP user and an RPC user, both in Locust's statistics.

    make load LOAD_USERS=20 LOAD_DURATION=1m     # headless; see load/run.py and docs/load.md

HttpUser: `POST /messages` (a message with a payload: the whole flow runs behind it), then
`GET /messages/<id>` of it, against `--host` (message_service's HTTP interface).

RpcUser: nameko's standalone `ClusterRpcProxy` on `AMQP_URI`, one proxy (one connection, one reply
queue) per simulated user, so users never share a channel. Locust runs on gevent and nameko 2.14 on
eventlet: the standalone proxy only imports eventlet and never runs its hub (a call is a kombu
publish and a blocking `drain_events` for the reply), and under Locust's gevent monkey-patching
those socket reads yield to the other users. Each call is reported with Locust's `request` event,
so it counts like an HTTP request (request type `rpc`, named `<service>.<method>`).
"""

import json
import os
import time
import uuid

import gevent
from locust import HttpUser, User, between, events, task
from nameko.standalone.rpc import ClusterRpcProxy

AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
RPC_TIMEOUT = float(os.environ.get("LOAD_RPC_TIMEOUT", "30"))
WAIT = between(0.1, 0.5)


@events.init.add_listener
def catch_up_with_the_clock(**_):
    """gevent's loop reads the clock once per turn, and has not turned while Locust imported this
    file (nameko, eventlet, kombu: seconds on a busy machine). `--run-time`'s timer would count from
    that stale time and stop the run early, at once if the imports took longer than the run."""
    gevent.get_hub().loop.update_now()


def new_message(kind: str) -> dict:
    """A message with a small payload: stored, its event sent, uploaded and notified behind it."""
    return {"message": f"load {kind}", "payload": {"load": kind, "n": uuid.uuid4().hex}}


class MessagesOverHttp(HttpUser):
    wait_time = WAIT

    @task
    def post_then_get(self):
        with self.client.post("/messages", json=new_message("http"), catch_response=True) as posted:
            if posted.status_code != 201:
                posted.failure(f"HTTP {posted.status_code}: {posted.text[:200]}")
                return
            message_id = posted.json()["id"]
        self.client.get(f"/messages/{message_id}", name="/messages/[id]")


class MessagesOverRpc(User):
    wait_time = WAIT

    def on_start(self):
        self.proxy = ClusterRpcProxy({"AMQP_URI": AMQP_URI}, timeout=RPC_TIMEOUT)
        self.rpc = self.proxy.start()

    def on_stop(self):
        self.proxy.stop()

    def call(self, service: str, method: str, *args):
        """One RPC call, timed and reported to Locust's statistics; None when it failed."""
        started = time.perf_counter()
        result = error = None
        try:
            result = getattr(getattr(self.rpc, service), method)(*args)
        except Exception as exc:  # reported as a failure, as a 5xx would be: the user goes on
            error = exc
        self.environment.events.request.fire(
            request_type="rpc",
            name=f"{service}.{method}",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(json.dumps(result, default=str)) if error is None else 0,
            exception=error,
            context={},
        )
        return result

    @task
    def store_read_and_greet(self):
        """All three calls in every iteration, in order (not tasks picked at random): a short run
        with few users still reports each of them."""
        stored = self.call("message_service", "receive_message", new_message("rpc"))
        if stored is not None:
            self.call("message_service", "get_message", stored["id"])
        self.call("receiver_service", "receive_event", {"message": "Hello World!!"})
