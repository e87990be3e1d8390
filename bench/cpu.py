"""Where a pipeline run's CPU goes: CPU seconds per process group over the measured window.

Read from the kernel's per-process counters (psutil: user + system time) when the first message is
sent and when the last is `done`, so start-up and warm-up are left out. The groups are the run's own
service processes (by service: the time_consuming instances together), the bench process itself (the
driver calling `receive_message`/`get_message`, and the webhook sink, a thread of it), and the shared
servers: RabbitMQ (`beam.smp` and its helpers), PostgreSQL (every `postgres` process: the run's
backends among them) and the S3 server (SeaweedFS's `weed`, a container's process seen from the
host, or moto's server). `busy` is the whole machine's non-idle time over the same window, so the
rows show what a message costs and the last row whether the machine's cores were the limit.
"""

import os
import time

import psutil

SERVERS = {
    "RabbitMQ": ("beam.smp", "erl_child_setup", "inet_gethost", "epmd"),
    "PostgreSQL": ("postgres",),
    "S3 server": ("weed", "moto_server"),
}
DRIVER = "bench driver + webhook sink"
BUSY = "whole machine, busy (all cores)"


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def server_group(process: psutil.Process) -> str | None:
    try:
        name = process.name()
        if name.startswith("python") and "moto_server" in " ".join(process.cmdline()):
            name = "moto_server"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return next((group for group, names in SERVERS.items() if name in names), None)


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class CpuMeter:
    """`start()` then `stop()`: CPU seconds per group in between. `services` maps a group to pids."""

    def __init__(self, services: dict[str, list[int]]):
        self.services = services
        self.before: dict[int, float] = {}

    def snapshot(self) -> dict[int, tuple[str, float]]:
        """pid -> (group, CPU seconds so far), for every process this meter follows."""
        groups = {pid: group for group, pids in self.services.items() for pid in pids}
        groups[os.getpid()] = DRIVER
        seen = {}
        for process in psutil.process_iter():
            group = groups.get(process.pid) or server_group(process)
            if group is None:
                continue
            try:
                seen[process.pid] = (group, cpu_seconds(process))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return seen

    def start(self):
        self.before = {pid: seconds for pid, (_, seconds) in self.snapshot().items()}
        self.busy_before = machine_busy_seconds()
        self.started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since `start()`; a process started meanwhile counts from zero."""
        spent: dict[str, float] = {group: 0.0 for group in [*self.services, DRIVER, *SERVERS]}
        for pid, (group, seconds) in self.snapshot().items():
            spent[group] += seconds - self.before.get(pid, 0.0)
        spent[BUSY] = machine_busy_seconds() - self.busy_before
        self.wall_seconds = time.perf_counter() - self.started
        return spent
