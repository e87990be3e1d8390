"""Hostile HTTP bodies sent to a real `nameko run` message service: too big, chunked, nested deep.

A body over HTTP_MAX_BODY_BYTES is refused (413, JSON) before it is read, so the process does not
grow by it; a JSON document nested 200,000 deep is a 400, not a 500 from the parser's recursion.
"""

import json
import socket

import psutil
import pytest
import requests

from testkit.processes import ServiceProcess, free_port, wait_for

MiB = 1024 * 1024


@pytest.fixture
def message_http(amqp_uri, postgres, tmp_path):
    """A message service whose body limit is the default (1 MiB) but for `HTTP_MAX_BODY_BYTES` given."""
    started = []

    def start(**env):
        port = free_port()
        log_dir = tmp_path / f"run-{len(started)}"
        log_dir.mkdir()
        env = {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": postgres(),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            **env,
        }
        process = ServiceProcess("message", env, log_dir)
        started.append(process)
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base_url}/health"), timeout=60, message="the HTTP interface")
        return process, port

    yield start
    for process in started:
        process.stop()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Sends `head` and `body` as they are; returns the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode() + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    headers, _, content = received.partition(b"\r\n\r\n")
    return int(headers.split()[1]), json.loads(content)


def post_head(length: int | None = None, chunked: bool = False) -> str:
    lines = ["POST /messages HTTP/1.1", "Host: localhost", "Content-Type: application/json"]
    lines += [f"Content-Length: {length}"] if length is not None else []
    lines += ["Transfer-Encoding: chunked"] if chunked else []
    return "\r\n".join(lines) + "\r\n"


def rss(process: ServiceProcess) -> int:
    return psutil.Process(process.process.pid).memory_info().rss


def test_a_64_mib_body_is_refused_before_it_is_read(message_http):
    process, port = message_http()
    before = rss(process)

    # Only the head is sent: the answer comes without waiting for the 64 MiB announced.
    status, body = raw_request(port, post_head(length=64 * MiB), b'{"message": "')
    # Sent in full, it is read and dropped in small chunks, never held.
    status_sent, body_sent = raw_request(port, post_head(length=64 * MiB), b" " * (64 * MiB))

    assert (status, body["error"]) == (413, "RequestEntityTooLarge")
    assert (status_sent, body_sent["error"]) == (413, "RequestEntityTooLarge")
    assert rss(process) - before < 16 * MiB


def test_the_limit_is_a_setting(message_http):
    _, port = message_http(HTTP_MAX_BODY_BYTES="4096")
    small = json.dumps({"message": "x" * 4000}).encode()
    big = json.dumps({"message": "x" * 5000}).encode()

    assert raw_request(port, post_head(len(small)), small)[0] == 201
    assert raw_request(port, post_head(len(big)), big)[0] == 413


def test_a_chunked_body_is_refused_with_a_json_411(message_http):
    _, port = message_http()

    status, body = raw_request(port, post_head(chunked=True), b"5\r\n[1,2]\r\n0\r\n\r\n")

    assert (status, body["error"]) == (411, "LengthRequired")


@pytest.mark.parametrize("wrap", ["{}", '{{"message": "x", "payload": {}}}'])
def test_a_document_nested_200000_deep_is_a_400(message_http, wrap):
    _, port = message_http()
    document = wrap.format("[" * 200_000 + "]" * 200_000).encode()

    status, body = raw_request(port, post_head(len(document)), document)

    assert (status, body["error"]) == (400, "InvalidInput")
    assert "nested too deeply" in body["message"]


def test_a_payload_the_parser_reads_but_nested_too_deep_to_validate_is_a_400(message_http):
    _, port = message_http()
    document = ('{"message": "x", "payload": ' + "[" * 900 + "]" * 900 + "}").encode()

    status, body = raw_request(port, post_head(len(document)), document)

    assert (status, body["error"]) == (400, "InvalidInput")  # pydantic's own depth limit
