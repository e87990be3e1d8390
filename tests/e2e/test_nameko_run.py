"""The four services as docker-compose.yml runs them, as local processes (`testkit.localstack.LocalStack`).

The commands, environment and one-shot migrations job come from docker-compose.yml, so what these
tests run is what `docker compose up` runs. Called the article's ways: ClusterRpcProxy (with a
timeout, as every standalone client should) and `nameko shell`, driven through stdin.
"""

import json
import re
import shlex
import subprocess

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from testkit.localstack import make_local_stack
from testkit.processes import BIN, ROOT, wait_for
from tests.docs import replayed_blocks


@pytest.fixture(scope="module")
def stack(amqp_uri, postgres, tmp_path_factory):
    local = make_local_stack(amqp_uri, postgres, tmp_path_factory.mktemp("stack"))
    local.run_jobs()
    local.start()
    try:
        local.wait_ready()
    except Exception:
        local.close()
        raise
    yield {
        "env": {"AMQP_URI": amqp_uri},
        "web": f"http://{local.instances['message-1'].web_address}",
        "local": local,
    }
    # SIGTERM, as `docker stop` sends it: every service stops gracefully and exits 0.
    exit_codes = local.close()
    assert exit_codes == dict.fromkeys(local.instances, 0), [i.output() for i in local.instances.values()]


@pytest.fixture
def cluster_rpc(stack):
    with ClusterRpcProxy({"AMQP_URI": stack["env"]["AMQP_URI"]}, timeout=10) as proxy:
        yield proxy


def test_the_stack_runs_each_compose_service_once_by_default(stack):
    assert sorted(stack["local"].instances) == ["message-1", "receiver-1", "sender-1", "time_consuming-1"]


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


ARTICLE_BLOCKS = replayed_blocks("tests/e2e/test_nameko_run.py")


@pytest.mark.parametrize(
    "block",
    [block for block in ARTICLE_BLOCKS if block.commands[0].startswith("echo")],
    ids=lambda block: f"{block.page.name}:{block.line}",
)
def test_the_docs_piped_nameko_shell_call_prints_what_they_show(stack, block):
    script = re.fullmatch(r'echo "(.*)" \| \.venv/bin/nameko shell .*', block.commands[0])[1]

    output = nameko_shell(stack, script + "\n")

    # what the shell printed, less its last, empty prompt at the end of the input
    assert [line for line in output.splitlines() if line.strip() != ">>>"] == block.output


def test_the_docs_cluster_rpc_proxy_program_prints_what_they_show(stack, tmp_path):
    (block,) = [block for block in ARTICLE_BLOCKS if block.commands[0].endswith("cluster_call.py")]
    program = re.search(r"```python\n(.*?)```", block.page.read_text(), re.S)[1]
    # the docs' program as written, pointed at this test's vhost instead of the default one
    program = program.replace('"amqp://guest:guest@localhost:5672/"', repr(stack["env"]["AMQP_URI"]))
    (tmp_path / "cluster_call.py").write_text(program)

    ran = subprocess.run(
        [BIN / "python", "cluster_call.py"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == block.output


def test_the_docs_curl_calls_answer_what_they_show(stack):
    (block,) = [block for block in ARTICLE_BLOCKS if block.commands[0].startswith("curl")]
    for command, shown in zip(block.commands, block.output, strict=True):
        against_this_stack = command.replace("localhost:8000", stack["web"])
        answered = subprocess.run(shlex.split(against_this_stack), capture_output=True, text=True, timeout=30)
        assert json.loads(answered.stdout) == json.loads(shown), command


def test_nameko_shell_reaches_every_service(stack):
    output = nameko_shell(
        stack,
        "stored = n.rpc.message_service.receive_message({'message': 'from the shell'})\n"
        "print(n.rpc.message_service.get_message(stored['id'])['message'])\n"
        "print(n.rpc.sender_service.send_event('ping'))\n",
    )

    assert "from the shell" in output
    assert "Event Received: ping" in output
