"""What a service's extra memory is: each library's import, measured alone in a fresh interpreter.

Every figure is the resident memory a fresh `python` adds by importing the module after nameko
(which every service and every baseline imports first, with eventlet monkey-patching as `nameko run`
does), so the rows say what a service pays for using the library at all.
"""

import json
import statistics
import subprocess
import sys

MODULES = {
    "boto3 (S3)": "boto3",
    "SQLAlchemy ORM": "sqlalchemy.orm",
    "pg8000 (PostgreSQL driver)": "pg8000",
    "pydantic": "pydantic",
    "prometheus_client": "prometheus_client",
    "OpenTelemetry SDK + OTLP exporter": (
        "opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter"
    ),
    "requests": "requests",
    "common.tracing (as the services import it)": "common.tracing",
    "receiver.service (everything it imports)": "receiver.service",
    "time_consuming.service (everything it imports)": "time_consuming.service",
}

PROBE = """
import json, sys, psutil, eventlet
eventlet.monkey_patch()
import nameko.rpc, nameko.events, nameko.web.handlers, nameko.timer
process = psutil.Process()
before = process.memory_info().rss
for name in sys.argv[1].split(", "):
    __import__(name)
print(json.dumps({"mib": (process.memory_info().rss - before) / 2**20, "modules": len(sys.modules)}))
"""


def import_cost(modules: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", PROBE, modules], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def nameko_baseline() -> float:
    """A fresh interpreter with nameko imported (and eventlet patching): every service's floor."""
    probe = (
        "import psutil, eventlet; eventlet.monkey_patch(); import nameko.rpc, nameko.events, "
        "nameko.web.handlers, nameko.timer; print(psutil.Process().memory_info().rss / 2**20)"
    )
    return float(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    )


def measure_imports(rounds: int, progress) -> dict:
    task = progress.add_task("import costs, fresh interpreters", total=rounds * (len(MODULES) + 1))
    costs = {label: [] for label in MODULES}
    baseline = []
    for _ in range(rounds):
        baseline.append(nameko_baseline())
        progress.advance(task)
        for label, modules in MODULES.items():
            costs[label].append(import_cost(modules)["mib"])
            progress.advance(task)
    return {
        "nameko_mib": statistics.median(baseline),
        "imports_mib": {label: statistics.median(values) for label, values in costs.items()},
    }


def report_memory(rss: dict, pipeline_rss: dict, imports: dict | None) -> list[str]:
    lines = ["", "## Memory per process (RSS after warm-up)", "", "| process | RSS MiB |", "|---|---:|"]
    for name, mib in {**rss, **pipeline_rss}.items():
        lines.append(f"| {name} | {mib:.1f} |")
    if imports:
        lines += [
            "",
            "## What the extra memory is: imports",
            "",
            "A fresh interpreter with eventlet patched and nameko imported: "
            f"{imports['nameko_mib']:.1f} MiB. "
            "What importing each module adds on top of that, alone (libraries share dependencies, so the "
            "rows do not add up):",
            "",
            "| import | + RSS MiB |",
            "|---|---:|",
        ]
        for label, mib in imports["imports_mib"].items():
            lines.append(f"| {label} | {mib:.1f} |")
    return lines
