"""The receiver's providers, each one's cost per worker (bench/provider_probe.py), and the report."""

import json
import subprocess
import sys
from pathlib import Path

from bench.processes import ROOT

PROBE_LOG = "provider-probe.log"  # in the run's log directory: the probed receiver's log lines


def measure_providers(rounds: int, log_dir: Path, workers: int = 2000) -> dict:
    with open(log_dir / PROBE_LOG, "wb") as log:
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.provider_probe",
                "--rounds",
                str(rounds),
                "--workers",
                str(workers),
            ],
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
    together = {label: costs.pop(label) for label in list(costs) if label.startswith("all of them")}
    for label, microseconds in sorted(costs.items(), key=lambda item: -item[1]):
        lines.append(f"| {label} | {microseconds:.1f} |")
    for label, microseconds in together.items():
        lines.append(f"| {label} | {microseconds:.1f} |")
    level = providers.get("log_level", "INFO")
    lines += [
        "",
        f"Each provider's hooks (`get_dependency`, `worker_setup`, `worker_result`, `worker_teardown`) for "
        f"{providers['workers']} workers, each in a greenthread of its own, in one process with the "
        f"receiver's container and config.yaml at LOG_LEVEL={level} (at INFO, the default, `WorkerLog` "
        "writes a line per worker, here to a file) and no broker traffic; less the time of workers with "
        f"no provider ({providers['empty_us']:.1f} µs: nameko's worker context and the greenthread); "
        f"medians over {providers['rounds']} rounds in balanced orders (bench/provider_probe.py). The RPC "
        "rows above run the services at LOG_LEVEL=WARNING, as the last row.",
    ]
    if rpc and {"receiver directly (project)", "bare nameko @rpc echo"} <= set(rpc):
        gap = rpc["receiver directly (project)"]["p50_ms"] - rpc["bare nameko @rpc echo"]["p50_ms"]
        lines[-1] += (
            f" For scale: in this run's RPC rows the receiver's sequential p50 is {1000 * gap:.0f} µs "
            "above the bare echo's."
        )
    return lines
