"""`experiments`: the article's experiments, one command each, on local processes or containers.

    experiments concurrency | scaling | fault-tolerance | broker-restart | broker-outage
    experiments --backend docker [SCENARIO]      the same on docker-compose.yml's containers

Built on the project's test kit (`testkit`): the local runner, private broker nodes, scratch vhosts;
the container experiments are the very ones tests/containers asserts the counts of. With
`--record FILE`, what the run printed goes into FILE as a console block, which docs/experiments.md
includes (tools/docs.py): the docs show a real run, never a pasted one.
"""

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

from experiments.local import SCENARIOS, console
from testkit.processes import ROOT


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenario",
        nargs="?",
        choices=[*SCENARIOS, "network-cut"],
        help="local: one is required; docker: every container experiment when none is given",
    )
    parser.add_argument(
        "--backend",
        choices=["local", "docker"],
        default="local",
        help="local processes (default), or docker-compose.yml's containers (testkit.containers)",
    )
    parser.add_argument(
        "--work-seconds",
        type=float,
        default=1.0,
        help="receiver's work per call (S); docker: 1 s, as in the tests",
    )
    parser.add_argument("--max-instances", type=int, default=3, help="scaling: up to this many receivers")
    parser.add_argument("--calls", type=int, default=None, help="calls per run (each scenario has a default)")
    parser.add_argument(
        "--outage-seconds", type=float, default=30.0, help="broker-outage: how long it is down"
    )
    parser.add_argument("--plot", type=Path, default=Path("scaling.png"), help="scaling: where the PNG goes")
    parser.add_argument(
        "--markdown",
        type=Path,
        help="docker: also write the tables into this Markdown file (docs/experiments.md includes it)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        help="also write what the run printed, as a console block, into this Markdown file (a docs page "
        "includes it: tools/docs.py)",
    )
    return parser


def run(args) -> int:
    if args.backend == "docker":
        from experiments import containers

        with contextlib.suppress(KeyboardInterrupt):
            return containers.run(args) or 0
        return 130
    if args.scenario not in SCENARIOS:
        raise SystemExit(
            f"experiments: the local backend runs one of {', '.join(SCENARIOS)} "
            "(network-cut is `--backend docker`)"
        )
    scenario = SCENARIOS[args.scenario]
    with contextlib.suppress(KeyboardInterrupt):
        return scenario(args) or 0
    return 130


def main(argv=None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(arguments)
    args.compose_file = ROOT / "docker-compose.yml"
    args.state_dir = ROOT / ".stack"  # the demo's logs: .stack/demo/<scenario>/
    if args.record:
        console.record = True
    code = run(args)
    if args.record:
        record(args.record, arguments, console.export_text())
    return code


def record(path: Path, arguments: list[str], printed: str) -> None:
    shown = list(arguments)
    if "--record" in shown:  # the run's command as a reader would type it, without the recording
        del shown[shown.index("--record") : shown.index("--record") + 2]
    command = shlex.join(["experiments", *(a for a in shown if not a.startswith("--record="))])
    load = os.getloadavg()[0]
    path.write_text(
        f"<!-- written by `experiments --record`; load average {load:.1f} at the end of the run -->\n"
        f"```console\n$ .venv/bin/{command}\n{printed.rstrip()}\n```\n"
    )
    console.print(f"recorded: {path}")
    subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py")], check=False)
