"""The operator commands the docs show (topology, contracts, dead letters), run as written, printing
what they show."""

import json
import re
import subprocess

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from common.dead_letters import list_dead_letters
from testkit.processes import BIN, ROOT, ServiceProcess, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE
from tests.docs import replayed_blocks

BLOCKS = {block.commands[0]: block for block in replayed_blocks("tests/e2e/test_operator_commands.py")}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?")


def run(command: str, env: dict | None = None, **replace: str) -> list[str]:
    for shown, actual in replace.items():
        command = command.replace(shown, actual)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONWARNINGS": "ignore", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_topology_job_on_a_fresh_vhost_declares_what_the_docs_show(own_vhost):
    _, uri = own_vhost
    (command,) = [command for command in BLOCKS if "nameko-topology" in command]

    declared = run(command, **{"amqp://guest:guest@localhost:5672/fresh": uri})

    assert declared == BLOCKS[command].output


def test_the_contracts_check_prints_what_the_docs_show():
    (command,) = [command for command in BLOCKS if "common.contracts --check" in command]

    assert run(command) == BLOCKS[command].output


def test_the_dead_letters_session_prints_what_the_docs_show(
    own_vhost, rabbit_admin, postgres, httpserver, tmp_path
):
    """A `nameko run` time_consuming service whose webhook answers 410 once, then 200: the docs'
    list / replay / list / get_job session, run as written."""
    (block,) = [block for command, block in BLOCKS.items() if "nameko-dead-letters list" in command]
    vhost, amqp_uri = own_vhost
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("gone", status=410)
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    env = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": postgres(),
        "WEBHOOK_URL": httpserver.url_for("/hook"),
        "LOCAL_STORE_DIR": str(tmp_path / "objects"),
    }
    service = ServiceProcess("time_consuming", env, tmp_path)
    try:
        wait_for(lambda: rabbit_admin.consumers(vhost, HEAVY_PAYLOAD_QUEUE), timeout=60, message="consuming")
        shown_event = json.loads(block.steps[0][1][1])
        event_dispatcher({"AMQP_URI": amqp_uri})(
            "message_service", "heavy_payload_event", shown_event["body"]
        )
        wait_for(lambda: list_dead_letters({"AMQP_URI": amqp_uri}), message="the event parked")

        for command, shown in block.steps:
            if command.startswith("echo"):  # the user looks once the replayed event is handled
                wait_for(lambda: job_state(amqp_uri, shown_event["body"]["message_id"]) == "notified")
            printed = run(command, env=env)
            assert [normalised(line) for line in printed if line.strip() != ">>>"] == [
                normalised(line) for line in shown
            ], command
    finally:
        service.stop()


def job_state(amqp_uri: str, message_id: str) -> str | None:
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster_rpc:
        return (cluster_rpc.time_consuming_service.get_job(message_id) or {}).get("state")


def normalised(line: str) -> str:
    return TIMESTAMP.sub("<time>", line)
