"""Calling services from programs that are not Nameko services (cron jobs, scripts, demos)."""

import time

from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.exceptions import RpcTimeout
from nameko.standalone.rpc import ClusterRpcProxy

# What a client sees while the broker is gone: the in-flight call fails with a plain
# ConnectionRefusedError / ConnectionResetError (OSError), or an AMQP error when the broker closes
# the connection (ConnectionForced); a reply lost with it surfaces as RpcTimeout.
BROKER_ERRORS = (OSError, AMQPError, KombuError, RpcTimeout)


def call_with_retry(
    amqp_uri: str,
    service: str,
    method: str,
    *args,
    timeout: float = 10,
    retry_for: float = 120,
    on_retry=None,
    **kwargs,
):
    """One RPC call that outlasts a broker outage: on a broker error, reconnect and call again.

    Only for calls that are safe to repeat (idempotent, e.g. keyed by an id): the first attempt may
    have run even though its reply never arrived. A service's own error (`RemoteError`, or the type
    registered for it) is raised at once, never retried.
    """
    deadline = time.monotonic() + retry_for
    delay = 0.2
    while True:
        try:
            with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout) as proxy:
                return getattr(getattr(proxy, service), method)(*args, **kwargs)
        except BROKER_ERRORS as error:
            if time.monotonic() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(error)
            time.sleep(delay)
            delay = min(delay * 2, 2)
