"""A webhook receiver for the stack: logs every notification and keeps it, once per Idempotency-Key.

docker-compose.yml runs it as `webhook-sink` (from the application image) and points
time_consuming's `WEBHOOK_URL` at it, so `docker compose up` shows notifications end to end:

    POST /notifications        a JSON object; 200 {"recorded": true}. A repeated `Idempotency-Key`
                               is acknowledged (200 {"recorded": false, "duplicate": true}) and not
                               recorded again: the sender delivers at least once, the sink keeps one.
                               Not a JSON object: 400 with a JSON error; longer than MAX_BODY_BYTES: 413.
    GET  /notifications        {"notifications": [...]}, oldest first: each with its key, body,
                               first arrival and how many deliveries carried it.
    GET  /health               {"status": "ok"}

In memory only (a restart forgets), the newest `--keep` notifications. Logs are JSON lines like the
services' (common.logs). Standard library HTTP server, one thread per request: it serves a
development stack and load runs, not production traffic.

    webhook-sink [--host 0.0.0.0] [--port 8000] [--keep 10000]
"""

import argparse
import json
import logging
import signal
import threading
import uuid
import warnings
from collections import OrderedDict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_NAME = "webhook_sink"
PATH = "/notifications"
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_KEEP = 10_000

log = logging.getLogger(__name__)


class Notifications:
    """What arrived, one entry per Idempotency-Key (a request without one is its own entry)."""

    def __init__(self, keep: int = DEFAULT_KEEP):
        self.keep = keep
        self.lock = threading.Lock()
        self.entries: OrderedDict[str, dict] = OrderedDict()

    def record(self, body: dict, idempotency_key: str | None) -> bool:
        """True when `body` is new; False (and one more delivery counted) for a repeated key."""
        with self.lock:
            entry = self.entries.get(idempotency_key) if idempotency_key else None
            if entry is not None:
                entry["deliveries"] += 1
                return False
            self.entries[idempotency_key or f"no-key-{uuid.uuid4()}"] = {
                "idempotency_key": idempotency_key,
                "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "body": body,
                "deliveries": 1,
            }
            while len(self.entries) > self.keep:
                self.entries.popitem(last=False)
            return True

    def listing(self) -> list[dict]:
        with self.lock:
            return [dict(entry) for entry in self.entries.values()]


class SinkHandler(BaseHTTPRequestHandler):
    server: "SinkServer"

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "ok"})
        elif self.path == PATH:
            self.answer(200, {"notifications": self.server.notifications.listing()})
        else:
            self.answer(404, {"error": "NotFound", "message": f"no {self.path}"})

    def do_POST(self):
        if self.path != PATH:
            self.answer(404, {"error": "NotFound", "message": f"POST to {PATH}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            self.answer(413, {"error": "PayloadTooLarge", "message": f"over {MAX_BODY_BYTES} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError as error:
            body, problem = None, f"not JSON: {error}"
        else:
            problem = None if isinstance(body, dict) else "the body must be a JSON object"
        if problem:
            log.warning("notification refused", extra={"reason": problem})
            self.answer(400, {"error": "InvalidInput", "message": problem})
            return
        key = self.headers.get("Idempotency-Key")
        recorded = self.server.notifications.record(body, key)
        log.info(
            "notification received" if recorded else "notification repeated: already recorded",
            extra={"idempotency_key": key, "notification": body, "duplicate": not recorded},
        )
        self.answer(200, {"recorded": recorded, "duplicate": not recorded})

    def answer(self, status: int, document: dict):
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 -- the base class's signature
        log.debug("%s %s", self.address_string(), format % args)


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], keep: int = DEFAULT_KEEP):
        super().__init__(address, SinkHandler)
        self.notifications = Notifications(keep)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="webhook-sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP, help="notifications kept (newest)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    # common.logs imports nameko, hence eventlet, which warns on stderr at import: only JSON lines here.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from common.logs import configure_json_logging

    configure_json_logging(SERVICE_NAME, args.log_level)
    server = SinkServer((args.host, args.port), keep=args.keep)
    # SIGTERM (docker stop, Ctrl-C of `stack`) ends serve_forever: exit 0, a graceful stop.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("listening", extra={"address": f"http://{args.host}:{server.server_port}{PATH}"})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    log.info("stopped")


if __name__ == "__main__":
    main()
