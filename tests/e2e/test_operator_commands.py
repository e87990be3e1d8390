"""The operator commands the docs show (topology, contracts), run as written, printing what they show."""

import subprocess

from testkit.processes import BIN, ROOT
from tests.docs import replayed_blocks

BLOCKS = {block.commands[0]: block for block in replayed_blocks("tests/e2e/test_operator_commands.py")}


def run(command: str, **replace: str) -> list[str]:
    for shown, actual in replace.items():
        command = command.replace(shown, actual)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},
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
