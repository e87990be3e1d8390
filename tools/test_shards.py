"""`make test`: the suite as a few pytest processes at once, each shard's lines shown as they come.

    python tools/test_shards.py [pytest options...]     # e.g. -x or -k receiver (no --lf: no cache)

Why shards and not pytest-xdist: `pytest -n 2` hung here at "bringing up nodes..." (8 min, then
killed). The suite runs under eventlet's monkey-patching (conftest.py, as nameko's own plugin
does), and xdist's workers reach the controller through execnet's `main_thread_only` model, which
relies on a real I/O thread beside the main one: most likely what the patched `threading` takes
away. Separate pytest processes share nothing but
the machine; each run's names are its own (`testkit.rabbit.run_name` carries the pid), so they
can run side by side on the shared RabbitMQ and PostgreSQL, as two developers' runs can.

Most of the suite waits (on the broker, a restart, a container, a webhook), so four processes
on two cores take well under the serial time; the slow shards are named here and everything else
is the last one, so a new test file is never left out. A plain `pytest` still runs the whole
suite in one process.

Each shard's output goes to `build/test-logs/<shard>.log` and, line by line with the shard's name,
to the terminal; at the end one line per shard and the exit status: 0 only when every shard passed.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "build" / "test-logs"

# name -> the paths it runs; the last shard (no paths) runs pytest's testpaths minus the others.
SHARDS: dict[str, list[str]] = {
    "containers": ["tests/containers"],  # the image builds, then the compose stack: the longest
    "faults": ["tests/faults"],  # private brokers and databases stopped, killed, restarted
    "e2e": ["tests/e2e"],  # the stack as `nameko run` processes: load, the SQLite default, tracing
    "rest": [],
}
NO_TESTS_COLLECTED = 5  # pytest's exit status when -k or -m left a shard nothing to run


def command(name: str, extra: list[str]) -> list[str]:
    paths = SHARDS[name]
    if not paths:
        others = [path for shard in SHARDS.values() for path in shard]
        paths = [f"--ignore={path}" for path in others]
    return [sys.executable, "-m", "pytest", *paths, *extra]


class Shard:
    def __init__(self, name: str, extra: list[str]):
        self.name = name
        self.log = LOGS / f"{name}.log"
        self.started = time.monotonic()
        self.ended: float | None = None
        self.last_line = ""
        self.process = subprocess.Popen(
            command(name, extra),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.reader = threading.Thread(target=self.relay, daemon=True)
        self.reader.start()

    def relay(self):
        width = max(len(name) for name in SHARDS)
        with self.log.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if line.strip():
                    self.last_line = line.strip()
                sys.stdout.write(f"{self.name:<{width}} | {line}")
                sys.stdout.flush()
        self.process.wait()
        self.ended = time.monotonic()

    def wait(self) -> int:
        self.reader.join()
        return self.process.returncode

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def main(extra: list[str]) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    shards = [Shard(name, extra) for name in SHARDS]
    try:
        codes = [shard.wait() for shard in shards]
    except KeyboardInterrupt:  # Ctrl-C reached the shards too (one process group): let them end
        codes = [shard.wait() for shard in shards]
    logs = os.path.relpath(LOGS, ROOT)
    print(f"\n{'shard':<12}{'status':>7}{'time':>9}  pytest's last line (whole output: {logs}/)")
    for shard, code in zip(shards, codes, strict=True):
        minutes, seconds = divmod(round(shard.seconds), 60)
        print(f"{shard.name:<12}{code:>7}{minutes:>5}m{seconds:02d}s  {shard.last_line.strip('= ')}")
    ran = [code for code in codes if code != NO_TESTS_COLLECTED]
    if not ran:
        return NO_TESTS_COLLECTED
    return next((code for code in ran if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
