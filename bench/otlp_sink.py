"""A local OTLP/HTTP trace receiver for the tracing rows: answers every export, keeps nothing.

Run as its own process (`python -m bench.otlp_sink PORT`), so what it costs to receive spans is not
charged to the bench's client; it counts export requests, which the bench reads back at the end.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

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


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
