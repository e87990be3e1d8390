"""docs/running.md's `nameko shell` recipes, run as written against the running stack, with their output.

The block marked `<!-- replayed by tests/e2e/test_shell_recipes.py -->` is replayed line by line through
Python's interactive console inside a real `nameko shell` (piped: stdin is not a terminal), so expression
values and tracebacks print as they do for a user. Ids and timestamps differ from run to run and
are compared as placeholders; a dict printed in the docs must be contained in the real one.
"""

import ast
import re
import subprocess

from testkit.processes import BIN, ROOT
from tests.docs import replayed_blocks

SEPARATOR = "--- next ---"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?")


def readme_recipes() -> list[tuple[str, str]]:
    """[(input line, expected output)] from the docs block."""
    (block,) = replayed_blocks("tests/e2e/test_shell_recipes.py")
    recipes: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith(">>> "):
            recipes.append((line[4:], []))
        elif line.startswith("$ ") or not recipes:
            continue
        elif line != "...":
            recipes[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in recipes]


def replay_script(commands: list[str]) -> str:
    return (
        "import code, sys\n"
        "sys.stderr = sys.stdout\n"
        "console = code.InteractiveConsole({'n': n})\n"
        f"for line in {commands!r}:\n"
        "    if console.push(line):\n"
        "        console.push('')\n"
        f"    print({SEPARATOR!r})\n"
        "\n"  # ends the `for` block in the shell's own console
    )


def normalise(text: str) -> str:
    return TIMESTAMP.sub("<time>", UUID.sub("<id>", text)).strip()


def matches(expected: str, actual: str) -> bool:
    expected, actual = normalise(expected), normalise(actual)
    if expected.startswith("Traceback"):
        return actual.startswith("Traceback") and expected.splitlines()[-1] == actual.splitlines()[-1]
    if expected.startswith("{"):
        wanted, got = ast.literal_eval(expected), ast.literal_eval(actual)  # ids and times are quoted
        return all(got.get(key) == value for key, value in wanted.items())
    return expected == actual


def test_every_rpc_method_has_a_recipe():
    recipes = " ".join(command for command, _ in readme_recipes())
    methods = {
        "receiver_service": ["receive_event", "receipt_count"],
        "sender_service": ["send_event"],
        "message_service": ["receive_message", "get_message", "redispatch_stuck"],
        "time_consuming_service": ["get_job"],
    }

    for service, names in methods.items():
        for name in names:
            assert f"n.rpc.{service}.{name}(" in recipes


def test_the_readme_shell_recipes_print_what_the_readme_shows(local_stack, amqp_uri):
    local_stack()
    recipes = readme_recipes()

    shell = subprocess.run(
        [BIN / "nameko", "shell", "--config", "services/receiver/config.yaml"],
        input=replay_script([command for command, _ in recipes]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"AMQP_URI": amqp_uri, "PATH": str(BIN), "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    # The shell's own console prompts for each line of the script before running it: drop them.
    outputs = [re.sub(r"^((>>>|\.\.\.) )+", "", block.strip()) for block in shell.stdout.split(SEPARATOR)]

    assert shell.returncode == 0, shell.stderr
    for (command, expected), actual in zip(recipes, outputs[: len(recipes)], strict=True):
        assert matches(expected, actual), f">>> {command}\ndocs: {expected}\nactual: {actual}"
