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
    amqp: str | dict,
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

    `amqp` is the broker's URI, or a config with `AMQP_URI` and `AMQP_SSL` (`common.config.client_config`,
    or a service's config.yaml read with `load_config`) for TLS.
    """
    config = {"AMQP_URI": amqp} if isinstance(amqp, str) else amqp
    deadline = time.monotonic() + retry_for
    delay = 0.2
    while True:
        try:
            with ClusterRpcProxy(config, timeout=timeout) as proxy:
                return getattr(getattr(proxy, service), method)(*args, **kwargs)
        except BROKER_ERRORS as error:
            if time.monotonic() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(error)
            time.sleep(delay)
            delay = min(delay * 2, 2)
