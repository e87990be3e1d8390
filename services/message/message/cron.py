"""The cron job: hand messages stuck in `pending` back to time_consuming_service.

Not a Nameko service: a one-shot program that calls message_service through `ClusterRpcProxy`
(with a timeout: without one, a call to a service that is down waits forever), prints what it
did and exits. compose runs it on a schedule with yacron (deploy/cron/yacron.yaml), Kubernetes as
a CronJob, and you run it once with `redispatch-stuck`.

Broker settings: `--config services/message/config.yaml` reads them as `nameko run` does;
without it, AMQP_URI and AMQP_SSL come from the environment. TLS (AMQP_SSL) applies either way.

Exit status: 0 done; 2 the broker cannot be reached or refuses us; 3 message_service is not
running (no queue, or no answer within the timeout).
"""

import argparse
import logging
import os
import sys
import warnings
from urllib.parse import urlparse

BROKER_UNAVAILABLE, SERVICE_UNAVAILABLE = 2, 3


def safe_uri(uri: str) -> str:
    from common.healthcheck import broker_port

    parsed = urlparse(uri)
    return parsed._replace(netloc=f"{parsed.hostname}:{broker_port(uri)}").geturl()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redispatch-stuck", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--older-than-minutes",
        type=float,
        default=float(os.environ.get("STUCK_AFTER_MINUTES", 10)),
        help="how long a message may stay pending (default: $STUCK_AFTER_MINUTES or 10)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("RPC_TIMEOUT", 30)),
        help="seconds to wait for message_service's answer (default: $RPC_TIMEOUT or 30)",
    )
    parser.add_argument(
        "--config", help="message_service's config.yaml, for the broker settings (default: the environment)"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # printed on importing nameko
    logging.getLogger("amqp").setLevel(logging.ERROR)  # its warnings about closing channels are noise here
    from amqp.exceptions import AMQPError
    from nameko.exceptions import RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    from common.config import client_config

    config = client_config(args.config)
    amqp_uri = config["AMQP_URI"]
    try:
        with ClusterRpcProxy(config, timeout=args.timeout) as cluster_rpc:
            redispatched = cluster_rpc.message_service.redispatch_stuck(args.older_than_minutes * 60)
    except (OSError, AMQPError) as error:
        print(f"redispatch-stuck: cannot use the broker at {safe_uri(amqp_uri)}: {error}", file=sys.stderr)
        return BROKER_UNAVAILABLE
    except UnknownService:
        print("redispatch-stuck: message_service is not running (no queue for it)", file=sys.stderr)
        return SERVICE_UNAVAILABLE
    except RpcTimeout:
        print(f"redispatch-stuck: message_service did not answer within {args.timeout:g}s", file=sys.stderr)
        return SERVICE_UNAVAILABLE
    print(
        f"redispatch-stuck: {len(redispatched)} message(s) pending for more than "
        f"{args.older_than_minutes:g} min handed to time_consuming_service again"
        + "".join(f"\n  {message_id}" for message_id in redispatched),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
