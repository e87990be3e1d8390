"""`make load`: Locust headless against a running stack, its CSV and HTML report, a summary table.

    python -m load.run --users 10 --spawn-rate 5 --duration 30s \\
        --host http://127.0.0.1:8000 --report build/load [--results load/results.md]

The RPC user reads the broker from `AMQP_URI`. Locust prints its statistics every few seconds while
it runs (the progress); at the end this prints one table per request name from Locust's own CSV.
Exit status: Locust's (1 when any request failed). `--results FILE` writes the run's table there
as Markdown (only when no request failed): docs/load.md includes load/results.md (tools/docs.py),
so the figures the docs show come from a real run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CSV_PREFIX = "load"
HEADERS = ("type", "name", "requests", "failures", "median ms", "95% ms", "99% ms", "max ms", "req/s")


def locust_command(args) -> list[str]:
    report = Path(args.report)
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", args.duration,
        "--host", args.host, "--csv", str(report / CSV_PREFIX), "--html", str(report / "report.html"),
        # the final statistics: Locust's CSV files are its once-a-second snapshots, which can miss the
        # calls users finish during --stop-timeout; this file is written after the last one
        "--json-file", str(report / CSV_PREFIX),
        "--stop-timeout", "30",  # users finish the call in hand: no request is cut off and miscounted
    ]  # fmt: skip


def percentile(histogram: dict[int, int], fraction: float) -> int:
    """The response time (ms, as Locust rounds it) under which `fraction` of the requests were."""
    wanted, seen = fraction * sum(histogram.values()), 0
    for milliseconds in sorted(histogram):
        seen += histogram[milliseconds]
        if seen >= wanted:
            return milliseconds
    return 0


def summarize(entries: list[dict]) -> list[dict]:
    """One row per request type and name, then `Aggregated`, from Locust's final JSON statistics."""
    started = min((e["start_time"] for e in entries), default=0)
    ended = max((e["last_request_timestamp"] or started for e in entries), default=0)
    seconds = max(ended - started, 1e-9)
    total = {"method": "", "name": "Aggregated", "num_requests": 0, "num_failures": 0, "response_times": {}}
    for entry in entries:
        total["num_requests"] += entry["num_requests"]
        total["num_failures"] += entry["num_failures"]
        for milliseconds, count in entry["response_times"].items():
            total["response_times"][milliseconds] = total["response_times"].get(milliseconds, 0) + count
    rows = []
    for entry in sorted(entries, key=lambda e: (e["method"], e["name"])) + [total]:
        histogram = {int(ms): count for ms, count in entry["response_times"].items()}
        rows.append(
            {
                "type": entry["method"] or "-",
                "name": entry["name"],
                "requests": entry["num_requests"],
                "failures": entry["num_failures"],
                "median ms": percentile(histogram, 0.5),
                "95% ms": percentile(histogram, 0.95),
                "99% ms": percentile(histogram, 0.99),
                "max ms": max(histogram, default=0),
                "req/s": f"{entry['num_requests'] / seconds:.1f}",
            }
        )
    return rows


def read_stats(report: Path) -> list[dict]:
    return summarize(json.loads((report / f"{CSV_PREFIX}.json").read_text()))


def table(rows: list[dict], markdown: bool = False) -> str:
    body = [[str(row[header]) for header in HEADERS] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|---|---|" + "---:|" * (len(HEADERS) - 2)]
        lines += ["| " + " | ".join(f"`{v}`" if i == 1 else v for i, v in enumerate(r)) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(v) for v in column) for column in zip(HEADERS, *body, strict=True)]
    return "\n".join(
        "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in [HEADERS, *body]
    )


def write_results(path: Path, args, rows: list[dict]) -> None:
    total = rows[-1]
    figures = (
        f"# make load: a real run\n\n"
        f"Written by `load/run.py --results` at the end of the run: {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end (other work included). `--users {args.users} --spawn-rate "
        f"{args.spawn_rate:g} --duration {args.duration}` against {args.against}: {total['requests']} "
        f"requests, {total['failures']} failures.\n\n{table(rows, markdown=True)}\n\nResponse times in "
        "ms. They depend on the machine and on what else runs on it: an example of the report, not a "
        "benchmark (that is `make bench`).\n"
    )
    path.write_text(figures)
    print(f"load: the summary written to {path} (python tools/docs.py puts it in the docs)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10, help="simulated users, HTTP and RPC (default 10)")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second (default 5)")
    parser.add_argument("--duration", default="30s", help="Locust's --run-time: 30s, 2m, 1h30m (default 30s)")
    parser.add_argument("--host", default="http://127.0.0.1:8000", help="message_service's HTTP interface")
    parser.add_argument("--report", default="build/load", help="folder for the CSV files and report.html")
    parser.add_argument("--results", type=Path, help="write the summary as Markdown to this file")
    parser.add_argument("--against", default="the running stack", help="what it ran against (--results)")
    args = parser.parse_args(argv)

    Path(args.report).mkdir(parents=True, exist_ok=True)
    print(
        f"load: {args.users} users for {args.duration} against {args.host} and "
        f"{os.environ.get('AMQP_URI', 'amqp://guest:guest@localhost:5672/').split('@')[-1]} (RPC)",
        flush=True,
    )
    status = subprocess.call(locust_command(args))
    stats = Path(args.report) / f"{CSV_PREFIX}.json"
    if not stats.exists():
        print(f"load: Locust exited with {status} and wrote no statistics", file=sys.stderr)
        return status or 1
    rows = read_stats(Path(args.report))
    print(f"\nload: summary ({args.report}/report.html, {args.report}/{CSV_PREFIX}_*.csv)\n{table(rows)}")
    if args.results and status == 0:
        write_results(args.results, args, rows)
    return status


if __name__ == "__main__":
    sys.exit(main())
