"""The four services as users start them: `nameko run --config services/<dir>/config.yaml <dir>.service`.

Called the article's ways: ClusterRpcProxy (with a timeout, as every standalone client should)
and `nameko shell`, driven through stdin.
"""

import subprocess

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support import BIN, ROOT, ServiceProcess, free_port, rpc_queue, wait_for

SERVICES = {
    "message": "message_service",
    "time_consuming": "time_consuming_service",
    "sender": "sender_service",
    "receiver": "receiver_service",
}
HANDLER_QUEUE = "evt-message_service-heavy_payload_event--time_consuming_service.time_consuming_event_handler"


@pytest.fixture(scope="module")
def stack(amqp_uri, vhost, postgres, rabbit_admin, tmp_path_factory):
    web_port = free_port()
    env = {"AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{web_port}"}
    log_dir = tmp_path_factory.mktemp("logs")
    processes = [
        ServiceProcess(service_dir, {**env, "DATABASE_URL": postgres()}, log_dir) for service_dir in SERVICES
    ]
    queues = [rpc_queue(name) for name in SERVICES.values()] + [HANDLER_QUEUE]
    try:
        for queue in queues:
            wait_for(
                lambda q=queue: rabbit_admin.consumers(vhost, q), timeout=60, message=f"a consumer on {queue}"
            )
    except AssertionError:
        for process in processes:
            process.stop()
        raise
    yield {"env": env, "web": f"http://127.0.0.1:{web_port}", "processes": processes}
    # SIGTERM, as `docker stop` sends it: every service stops gracefully and exits 0.
    exit_codes = {process.service_dir: process.stop() for process in processes}
    assert exit_codes == dict.fromkeys(SERVICES, 0), [process.output() for process in processes]


@pytest.fixture
def cluster_rpc(stack):
    with ClusterRpcProxy({"AMQP_URI": stack["env"]["AMQP_URI"]}, timeout=10) as proxy:
        yield proxy


def test_cluster_rpc_proxy_calls_the_receiver(cluster_rpc):
    reply = cluster_rpc.receiver_service.receive_event({"message": "Hello World!!"})

    assert reply == "Event Received: {'message': 'Hello World!!'}"


def test_sender_reaches_receiver_through_rpc_proxy(cluster_rpc):
    assert cluster_rpc.sender_service.send_event({"message": "Hello World!!"}) == (
        "Event Received: {'message': 'Hello World!!'}"
    )


def test_a_message_with_payload_ends_done(cluster_rpc):
    stored = cluster_rpc.message_service.receive_message({"message": "heavy", "payload": {"k": "v"}})

    wait_for(
        lambda: cluster_rpc.message_service.get_message(stored["id"])["status"] == "done", message="done"
    )


def test_http_interface(stack):
    created = requests.post(f"{stack['web']}/messages", json={"message": "over http"}, timeout=10)

    assert created.status_code == 201
    assert (
        requests.get(f"{stack['web']}/messages/{created.json()['id']}", timeout=10).json()["status"]
        == "received"
    )


def nameko_shell(stack, script: str) -> str:
    shell = subprocess.run(
        [BIN / "nameko", "shell", "--config", "services/receiver/config.yaml"],
        input=script,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**stack["env"], "PATH": str(BIN)},
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    return shell.stdout


def test_nameko_shell_runs_the_articles_call(stack):
    output = nameko_shell(
        stack, "print(n.rpc.receiver_service.receive_event(event={'message': 'Hello World!!'}))\n"
    )

    assert "Event Received: {'message': 'Hello World!!'}" in output


def test_nameko_shell_reaches_every_service(stack):
    output = nameko_shell(
        stack,
        "stored = n.rpc.message_service.receive_message({'message': 'from the shell'})\n"
        "print(n.rpc.message_service.get_message(stored['id'])['message'])\n"
        "print(n.rpc.sender_service.send_event('ping'))\n",
    )

    assert "from the shell" in output
    assert "Event Received: ping" in output
