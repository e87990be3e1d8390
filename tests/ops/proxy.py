"""A TCP proxy the test can cut and restore: the broker becomes unreachable for whoever connects
through it, without touching the shared RabbitMQ other test runs depend on.

It runs as its own process (`python -m tests.ops.proxy PORT HOST UPSTREAM_PORT`), so cutting it
is a kill: every connection through it drops and new ones are refused, as with a dead broker.
"""

import asyncio
import signal
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

from testkit.processes import ROOT, free_port, wait_for


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def serve(port: int, host: str, upstream_port: int):
    async def forward(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port, reuse_address=True)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


def through(proxy: "TcpProxy", amqp_uri: str) -> str:
    """The same AMQP URI, by way of the proxy."""
    parts = urlsplit(amqp_uri)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"))


class TcpProxy:
    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_port()
        self.process = None

    def start(self):
        host, port = self.upstream
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.ops.proxy", str(self.port), host, str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: self.process.stdout.readline().strip() == "listening", message="the proxy")
        return self

    def cut(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restore(self):
        self.start()

    def stop(self):
        if self.process.poll() is None:
            self.cut()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
