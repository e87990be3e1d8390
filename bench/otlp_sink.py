"""A local OTLP/HTTP trace receiver for the tracing rows: answers every export, keeps nothing.

Run as its own process (`python -m bench.otlp_sink PORT`), so what it costs to receive spans is not
charged to the bench's client; it counts export requests, which the bench reads back at the end.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench.processes import Process
from testkit.processes import free_port

REPLY = ExportTraceServiceResponse().SerializeToString()


class Handler(BaseHTTPRequestHandler):
    exports = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Handler.exports += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

    def do_GET(self):  # the bench's check that spans arrived
        body = str(Handler.exports).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_sink(log_dir: Path) -> tuple[Process, str]:
    """This receiver as a process of its own on a free port, and its base URL for
    OTEL_EXPORTER_OTLP_ENDPOINT."""
    port = free_port()
    process = Process(f"otlp-{port}", [sys.executable, "-m", "bench.otlp_sink", str(port)], {}, log_dir)
    return process, f"http://127.0.0.1:{port}"


def exports_seen(endpoint: str, timeout=15) -> int:
    """The export requests the receiver at `endpoint` has answered, waiting up to `timeout` for a
    first one (a batch leaves after 512 spans or 5 s)."""
    deadline = time.monotonic() + timeout
    exports = 0
    while time.monotonic() < deadline:
        try:
            exports = int(requests.get(f"{endpoint}/", timeout=5).text)
        except requests.ConnectionError:  # not listening yet
            exports = 0
        if exports:
            break
        time.sleep(0.5)
    return exports


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
