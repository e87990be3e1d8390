"""The entrypoints and proxies a service uses: import them from here, never from nameko.

Each is nameko's, in the project's flavour where nameko 2.14's falls short:

- `rpc`, `RpcProxy`, `EventDispatcher`: publish replies, calls and events with the retry policy
  of the config (common.messaging); `PUBLISH_ONCE` is the dispatcher's option for a caller that
  retries by itself (the outbox).
- `event_handler`: never acks and drops a failed event: retried later or parked (common.retries).
- `http`: JSON both ways, errors included, with a limit on request bodies (common.web).
- `timer`: nameko's own.

Why one place: nameko's `rpc` and ours in one service would be two consumers of its RPC queue, each
taking half the requests, half of them answered without the retry policy. Ruff's banned-API rule
(TID251, services/ruff.toml) makes importing nameko's under services/ a lint error.
"""

from nameko.timer import timer

from common.messaging import PUBLISH_ONCE, EventDispatcher, RpcProxy, rpc
from common.retries import event_handler
from common.web import http

__all__ = ["PUBLISH_ONCE", "EventDispatcher", "RpcProxy", "event_handler", "http", "rpc", "timer"]
