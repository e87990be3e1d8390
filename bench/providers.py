"""The receiver's providers, each one's cost per worker (bench/provider_probe.py), and the report."""

import json
import subprocess
import sys
from pathlib import Path

from bench.processes import ROOT


def measure_providers(rounds: int, log_dir: Path) -> dict:
    with open(log_dir / "provider-probe.log", "wb") as log:  # the receiver's log lines
        output = subprocess.run(
            [sys.executable, "-m", "bench.provider_probe", "--rounds", str(rounds)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            check=True,
        ).stdout
    return json.loads(output)


def report_providers(providers: dict, rpc: dict | None) -> list[str]:
    lines = [
        "",
        "## Per worker: what each of the receiver's providers costs",
        "",
        "| provider | µs per worker |",
        "|---|---:|",
    ]
    costs = dict(providers["providers_us"])
    together = costs.pop("all of them")
    for label, microseconds in sorted(costs.items(), key=lambda item: -item[1]):
        lines.append(f"| {label} | {microseconds:.1f} |")
    lines.append(f"| all of them, as the receiver runs them | {together:.1f} |")
    lines += [
        "",
        f"Each provider's hooks (`get_dependency`, `worker_setup`, `worker_result`, `worker_teardown`) for "
        f"{providers['workers']} workers, each in a greenthread of its own, in one process with the "
        "receiver's container and config.yaml (its log lines to a file) and no broker traffic; less the "
        f"time of workers with no provider ({providers['empty_us']:.1f} µs: nameko's worker context and the "
        f"greenthread); medians over {providers['rounds']} rotated rounds (bench/provider_probe.py).",
    ]
    if rpc and {"receiver directly (project)", "bare nameko @rpc echo"} <= set(rpc):
        gap = rpc["receiver directly (project)"]["p50_ms"] - rpc["bare nameko @rpc echo"]["p50_ms"]
        lines[-1] += (
            f" For scale: in this run's RPC rows the receiver's sequential p50 is {1000 * gap:.0f} µs "
            "above the bare echo's."
        )
    return lines
