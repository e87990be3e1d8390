"""Records a real `stack` session for docs/running.md: what `make run` prints, then the commands a
user types from another terminal, the cron job and the migrations job, each with what it printed.

    .venv/bin/python tools/record_stack_session.py      # needs the broker on localhost (make test-services)

It runs in a fresh checkout of HEAD (a temporary git worktree), so the SQLite files start empty and
nothing of yours is touched, with this checkout's .venv. Each part goes into docs/runs/stack-*.md as
a console block, which docs/running.md includes (tools/docs.py): the docs show a run, never a paste.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUNS = ROOT / "docs" / "runs"
INSTANCES = ["message-1", "receiver-1", "receiver-2", "receiver-3", "sender-1", "time_consuming-1"]


def main() -> int:
    checkout = Path(tempfile.mkdtemp(prefix="stack-session-")) / "repo"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", checkout, "HEAD"], cwd=ROOT, check=True)
    try:
        record(checkout)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", checkout], cwd=ROOT, check=False)
    subprocess.run([sys.executable, ROOT / "tools" / "docs.py"], check=False)
    return 0


def record(checkout: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    output = checkout / "stack-up.log"
    with open(output, "w") as log:
        up = subprocess.Popen(
            ["stack", "up", "--scale", "receiver=3"],
            cwd=checkout,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    session = Session(checkout, env)
    try:
        wait_until(lambda: all(f"stack: {name} ready" in output.read_text() for name in INSTANCES))
        session.run("stack ps")
        session.run("stack kill receiver-2          # SIGKILL: unacknowledged requests go back to the queue")
        session.run("stack stop receiver-3          # SIGTERM: nameko finishes its workers and exits 0")
        session.run("stack logs receiver-3          # what it printed, up to its graceful exit")
        session.run("stack start receiver-2")
        wait_until(lambda: output.read_text().count("stack: receiver-2 ready") == 2)
        session.run("stack ps")
        write("stack-control", session.take())

        session.run("stack cron                     # the compose cron service's jobs, with its environment")
        session.run("redispatch-stuck --older-than-minutes 0")
        session.run('AMQP_URI=amqp://guest:guest@localhost:5673/ redispatch-stuck; echo "exit $?"')
        session.run('stack stop message; redispatch-stuck --timeout 5; echo "exit $?"')
        write("stack-cron", session.take())
    finally:
        up.send_signal(signal.SIGINT)  # Ctrl-C
        up.wait(60)
    write(
        "stack-up",
        [(".venv/bin/stack up --scale receiver=3      # what `make run` runs", output.read_text())],
    )
    session.run("stack migrate                  # the compose migrations job, once, against this machine")
    write("stack-migrate", session.take())


class Session:
    """Commands typed from another terminal in the checkout, each with what it printed."""

    def __init__(self, checkout: Path, env: dict):
        self.checkout, self.env, self.steps = checkout, env, []

    def run(self, command: str) -> None:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.checkout,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # in the order a terminal shows them
            text=True,
            timeout=120,
        )
        # shown as typed in a checkout: the commands are .venv/bin's
        shown = re.sub(r"(?<![\w/.-])(stack|redispatch-stuck)\b", r".venv/bin/\1", command)
        self.steps.append((shown, done.stdout))

    def take(self) -> list[tuple[str, str]]:
        steps, self.steps = self.steps, []
        return steps


def write(name: str, steps: list[tuple[str, str]]) -> None:
    lines = [
        f"<!-- written by tools/record_stack_session.py on {time.strftime('%Y-%m-%d')} -->",
        "```console",
    ]
    for command, printed in steps:
        lines += [f"$ {command}", *printed.rstrip("\n").splitlines()]
    RUNS.mkdir(exist_ok=True)
    (RUNS / f"{name}.md").write_text("\n".join([*lines, "```"]) + "\n")
    print(f"recorded: docs/runs/{name}.md")


def wait_until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("record_stack_session: the stack did not get ready in time")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
