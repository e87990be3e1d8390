"""Where a receiver's CPU time goes under load, by package: py-spy samples summarised.

The receiver (events with ids: it writes its receipts) and the bare echo service each run under
`py-spy record` (py-spy starts them, so it may read their memory), take pipelined calls for a few
seconds, and are stopped. Samples are on-CPU only (py-spy leaves out idle waits in the eventlet
hub); each is charged to the package of its innermost frame (self time) and counted once for every
package anywhere on its stack (inclusive). Start-up samples (imports, the migration) are left out.
"""

import collections
import os
import re
import signal
import subprocess
import sys

import psutil

from bench.processes import BIN, Process, wait_consumers

RATE = 250  # samples per second
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
PACKAGE_LABELS = {
    "nameko": "nameko",
    "kombu": "kombu",
    "amqp": "amqp (py-amqp)",
    "eventlet": "eventlet",
    "greenlet": "eventlet",
    "sqlalchemy": "SQLAlchemy",
    "opentelemetry": "OpenTelemetry",
    "prometheus_client": "prometheus_client",
    "vine": "kombu",
}
START_UP = ("importlib._bootstrap", "(alembic/")  # imports, the schema migration at start
PROJECT = {"common", "receiver", "sender", "message", "time_consuming", "bench"}


def package_of(frame: str) -> str:
    """py-spy names a frame's file by its import path (`kombu/messaging.py`, `ssl.py`)."""
    if "<sqlalchemy generated" in frame:  # SQLAlchemy's own generated wrappers
        return PACKAGE_LABELS["sqlalchemy"]
    match = FRAME.match(frame)
    top = (match.group("path") if match else frame).split("/", 1)[0].removesuffix(".py")
    if top in PACKAGE_LABELS:
        return PACKAGE_LABELS[top]
    if top in PROJECT:
        return "project (common, services)"
    if top in sys.stdlib_module_names:
        return "Python standard library"
    return "other libraries"


def summarise(raw: str) -> dict:
    self_samples, inclusive, total = collections.Counter(), collections.Counter(), 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or any(marker in stack for marker in START_UP):
            continue
        frames = [frame for frame in stack.split(";") if frame.strip()]
        samples = int(count)
        total += samples
        self_samples[package_of(frames[-1])] += samples
        for package in {package_of(frame) for frame in frames}:
            inclusive[package] += samples
    return {"samples": total, "self": dict(self_samples), "inclusive": dict(inclusive)}


def profiled(name, modules_argv, env, log_dir, vhost, queue, load, seconds) -> dict:
    output = log_dir / f"profile-{name}.txt"
    spy = Process(
        f"profile-{name}",
        [
            BIN / "py-spy", "record", "--format", "raw", "--rate", str(RATE), "--nonblocking",
            "--output", str(output), "--", BIN / "nameko", "run", *modules_argv,
        ],
        env,
        log_dir,
    )  # fmt: skip
    try:
        wait_consumers(vhost, [queue])
        children = psutil.Process(spy.process.pid).children()
        calls = load(seconds)
        os.kill(spy.process.pid, signal.SIGINT)  # py-spy stops sampling and writes the file
        spy.process.wait(60)
    finally:
        for child in children:
            child.terminate()
        psutil.wait_procs(children, timeout=15)
        if spy.alive():
            spy.stop()
    if not output.exists():
        raise SystemExit(f"bench: py-spy wrote no profile; see {spy.log_path}")
    return {"calls": calls, "seconds": seconds, **summarise(output.read_text())}


def py_spy_works() -> bool:
    try:
        subprocess.run([BIN / "py-spy", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


def report_profile(profile) -> list[str]:
    packages = sorted(
        {p for side in profile["targets"].values() for p in side["self"]},
        key=lambda p: -max(side["self"].get(p, 0) / side["calls"] for side in profile["targets"].values()),
    )
    labels = list(profile["targets"])
    header = (
        "| package | " + " | ".join(f"{label}: CPU ms per call, self (inclusive)" for label in labels) + " |"
    )
    lines = [
        "",
        "## Where the CPU time goes (py-spy, by package)",
        "",
        header,
        "|---|" + "---:|" * len(labels),
    ]

    def ms_per_call(side, samples):
        return 1000 * samples / RATE / side["calls"]

    for package in packages:
        cells = []
        for label in labels:
            side = profile["targets"][label]
            cells.append(
                f"{ms_per_call(side, side['self'].get(package, 0)):.3f} "
                f"({ms_per_call(side, side['inclusive'].get(package, 0)):.3f})"
            )
        lines.append(f"| {package} | " + " | ".join(cells) + " |")
    totals = [
        f"{ms_per_call(profile['targets'][label], profile['targets'][label]['samples']):.3f}"
        for label in labels
    ]
    lines.append("| all on-CPU time | " + " | ".join(totals) + " |")
    lines += [
        "",
        f"Each process took pipelined calls (100 in flight) for {profile['seconds']} s under `py-spy record "
        f"--rate {RATE} --nonblocking`; on-CPU samples only, start-up (imports, migration) left out. "
        "Self: samples whose innermost frame is in the package; inclusive: samples with the package "
        "anywhere on the stack "
        "(a call into SQLAlchemy from the project's code counts for both). The receiver's calls carry an "
        "`id`, so each writes a receipt (SQLite).",
    ]
    return lines
