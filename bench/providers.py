"""The receiver's providers, each one's cost per worker (bench/provider_probe.py), and the report."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.otlp_sink import exports_seen, start_sink
from bench.processes import ROOT

PROBE_LOG = "provider-probe.log"  # in the run's log directory: the probed receiver's log lines
TRACING_ON = "Tracing, on: spans exported over OTLP"


def run_probe(rounds: int, workers: int, log, env: dict | None = None, only: tuple = ()) -> dict:
    argv = [sys.executable, "-m", "bench.provider_probe", "--rounds", str(rounds), "--workers", str(workers)]
    for name in only:
        argv += ["--only", name]
    output = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=log, check=True
    ).stdout
    return json.loads(output)


def measure_providers(rounds: int, log_dir: Path, workers: int = 2000) -> dict:
    """Every provider as the receiver is deployed (tracing off), then `Tracing` alone in a second
    process with tracing on, exporting to a local OTLP receiver: tracing is set up once per process."""
    with open(log_dir / PROBE_LOG, "wb") as log:
        result = run_probe(rounds, workers, log)
        sink, endpoint = start_sink(log_dir)
        try:
            traced = run_probe(
                rounds, workers, log, env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, only=("Tracing",)
            )
            # the row is only a tracing row if spans left the probe (the last batch at its exit)
            result["otlp_export_requests"] = exports_seen(endpoint)
        finally:
            sink.stop()
    result["providers_us"][TRACING_ON] = traced["providers_us"]["Tracing"]
    return result


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
    if TRACING_ON in costs:
        lines[-1] += (
            " Tracing is off in every row but one, as the services run by default; that row is a second "
            "probe process with `OTEL_EXPORTER_OTLP_ENDPOINT` set to a local OTLP receiver "
            f"({providers.get('otlp_export_requests', '?')} export requests seen): its hooks, and "
            "encoding the spans for the batched export, which runs in the same process."
        )
    if rpc and {"receiver directly (project)", "bare nameko @rpc echo"} <= set(rpc):
        gap = rpc["receiver directly (project)"]["p50_ms"] - rpc["bare nameko @rpc echo"]["p50_ms"]
        lines[-1] += (
            f" For scale: in this run's RPC rows the receiver's sequential p50 is {1000 * gap:.0f} µs "
            "above the bare echo's."
        )
    return lines
