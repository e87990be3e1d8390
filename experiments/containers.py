"""`experiments --backend docker`: the article's experiments on docker-compose.yml's containers.

`make images` (cached), then `docker compose up -d --scale receiver=3` under a project name of its
own (`testkit.containers.experiment_stack`: RECEIVER_WORK_SECONDS=1, MAX_WORKERS=3, free host ports),
the experiments of `testkit.containers` -- the ones tests/containers/test_experiments.py asserts the
counts of -- and `docker compose down -v`. Prints their counts with their timings, plots the
scaling run (`--plot`), and with `--markdown` writes the same tables into a Markdown file that a
docs page includes.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from experiments.local import console, plot, table
from testkit import containers
from testkit.processes import ROOT

# scenario -> the steps it runs; no scenario: all of them on one stack
STEPS = {
    "concurrency": ["concurrency"],
    "scaling": ["round-robin", "scaling"],
    "fault-tolerance": ["kill-and-stop"],
    "broker-restart": ["broker-restart"],
    "network-cut": ["network-cut"],
}


def run(args) -> int:
    import eventlet

    eventlet.monkey_patch()  # the experiments read replies in a greenthread while calls are sent
    if args.scenario == "broker-outage":
        raise SystemExit("experiments: broker-outage runs on the local backend only")
    steps = STEPS.get(args.scenario) or [step for steps in STEPS.values() for step in steps]
    work, workers = float(containers.RECEIVER_WORK_SECONDS), int(containers.MAX_WORKERS)
    calls = args.calls or 36
    console.print("[bold]make images[/] (cached: seconds when nothing changed)")
    tags = containers.build_images()
    results = {}
    started = time.monotonic()
    with (
        Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar,
    ):
        task = bar.add_task("docker compose up -d --scale receiver=3", total=len(steps) + 1)
        with containers.experiment_stack(tags, prefix="nameko-demo") as stack:
            bar.advance(task)
            for step in steps:
                bar.update(task, description=step)
                results[step] = EXPERIMENTS[step](stack, calls)
                stack.back_to_three()
                bar.advance(task)
            bar.update(task, description="docker compose down -v")
    load = os.getloadavg()[1]
    tables = []
    if "concurrency" in results:
        tables.append(concurrency_table(results["concurrency"], work, workers))
    if "scaling" in results:
        tables.append(scaling_table(results["scaling"], calls, work, workers))
        runs = [(r.receivers, r.seconds, r.calls / r.seconds) for r in results["scaling"]]
        plot(runs, calls, work, args.plot, max_workers=workers, instances_are="receiver containers")
    tables.append(experiments_table(results))
    for title, columns, rows in tables:
        table(title, columns, rows)
    minutes = (time.monotonic() - started) / 60
    console.print(f"{minutes:.1f} min in all, load average {load:.1f} over the last 5 min")
    if args.markdown:
        write_markdown(args.markdown, tables, args.plot, load)
    ok = all(verdict(step, result)[0] for step, result in results.items())
    return 0 if ok else 1


# -- the steps: each returns what `verdict` and the tables read ----------------------------------


def concurrency(stack, _calls):
    """The article's runs with MAX_WORKERS=3 per container: N calls at once on 1, 2, 3 containers."""
    return [
        containers.concurrent_calls(stack, receivers, calls)
        for receivers, calls in ((1, 3), (1, 6), (2, 6), (3, 9))
    ]


def scaling(stack, calls):
    return [containers.concurrent_calls(stack, receivers, calls) for receivers in (1, 2, 3)]


EXPERIMENTS = {
    "concurrency": concurrency,
    "round-robin": lambda stack, _calls: containers.round_robin(stack, calls=12),
    "scaling": scaling,
    "kill-and-stop": lambda stack, _calls: containers.kill_and_stop(stack, calls=50, after_replies=5),
    "broker-restart": lambda stack, _calls: containers.broker_restart(stack, events_=20),
    "network-cut": lambda stack, _calls: containers.network_cut(stack, calls=30, cut_seconds=30),
}


def verdict(step, result) -> tuple[bool, str, str, str]:
    """(as the tests assert?, what was done, the counts, the timings) of one step."""
    if step in ("concurrency", "scaling"):
        ok = all(r.answered == r.calls for r in result)
        answered = ", ".join(f"{r.answered}/{r.calls}" for r in result)
        return ok, f"{step}: calls at once on 1..3 containers", f"answered {answered}", "see its table"
    if step == "round-robin":
        n = result.calls // containers.RECEIVERS
        return (
            result.per_container == [n] * containers.RECEIVERS,
            f"{result.calls} sequential calls, 3 receivers",
            "per container " + "/".join(map(str, result.per_container)),
            f"{result.seconds:.1f} s",
        )
    if step == "kill-and-stop":
        codes = result.exit_codes
        return (
            result.answered == result.receipts == result.calls
            and codes == {"docker kill": 137, "docker stop": 0},
            f"`docker kill` + `docker stop` 2 of 3 receivers under {result.calls} calls",
            f"answered {result.answered}/{result.calls}, receipts {result.receipts}, "
            f"exit codes {codes['docker kill']} and {codes['docker stop']}",
            f"last reply {result.seconds_after_kill:.1f} s after the kill",
        )
    if step == "broker-restart":
        return (
            result.waiting_before == result.done == result.events,
            f"broker container restarted, {result.events} events waiting",
            f"waiting {result.waiting_before}/{result.events}, done {result.done}/{result.events}",
            f"all done {result.seconds_to_done:.1f} s after the restart",
        )
    if step == "network-cut":
        return (
            result.answered == result.calls and result.rejoined,
            f"1 receiver off the network {result.cut_seconds:.0f} s under {result.calls} calls",
            f"answered {result.answered}/{result.calls}, rejoined: {'yes' if result.rejoined else 'NO'}",
            f"last reply {result.seconds:.1f} s after the first call; consuming again "
            f"{result.seconds_to_rejoin:.1f} s after `docker network connect`",
        )
    raise ValueError(step)


# -- tables: (title, columns, rows), printed and written as Markdown ------------------------------


def concurrency_table(runs, work, workers):
    rows = []
    for r in runs:
        expected = -(-r.calls // (workers * r.receivers)) * work  # ceil: rounds of `workers` at once
        rows.append(
            (
                f"{r.calls} calls, {r.receivers} container(s)",
                f"{expected:.1f} s",
                f"{r.seconds:.2f} s",
                f"{r.seconds / expected:.2f}",
                f"{r.answered}/{r.calls}",
            )
        )
    return (
        f"Concurrency on containers (S = {work} s per call, MAX_WORKERS={workers} per container)",
        ["run", "article expects", "measured", "measured / expected", "answered"],
        rows,
    )


def scaling_table(runs, calls, work, workers):
    single = runs[0].calls / runs[0].seconds
    rows = []
    for r in runs:
        throughput = r.calls / r.seconds
        rows.append(
            (
                r.receivers,
                f"{r.seconds:.2f} s",
                f"{throughput:.1f}",
                f"{throughput / single:.2f}x",
                f"{-(-calls // (workers * r.receivers)) * work:.1f} s",
                "/".join(map(str, r.per_container)),
            )
        )
    return (
        f"Scaling on containers: {calls} calls at once, S = {work} s, MAX_WORKERS={workers} per container",
        ["containers", "time", "calls/s", "speed-up", "ideal time", "calls per container"],
        rows,
    )


def experiments_table(results):
    rows = []
    for step, result in results.items():
        ok, what, counts, timing = verdict(step, result)
        rows.append((what, counts, timing, "[green]as asserted[/]" if ok else "[red]NOT as asserted[/]"))
    return (
        "The article's experiments on containers (tests/containers/test_experiments.py asserts the counts)",
        ["experiment", "counts", "timings", "verdict"],
        rows,
    )


def markdown(title, columns, rows) -> list[str]:
    def cell(value) -> str:
        text = str(value)
        for markup in ("[green]", "[red]", "[/]"):
            text = text.replace(markup, "")
        return text.replace("|", "\\|")

    return [
        f"**{title}**",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
        "",
    ]


def write_markdown(path: Path, tables, plot_path: Path, load: float) -> None:
    """The tables as a Markdown file of their own, which a docs page includes (`<!-- include: ... -->`,
    tools/docs.py, run here to refresh the pages)."""
    lines = [
        "# The article's experiments on containers",
        "",
        f"`experiments --backend docker` on this 2-core machine ({time.strftime('%Y-%m-%d')}, load "
        f"average {load:.1f} from other work meanwhile; timings vary with it, the counts do not).",
        "",
    ]
    for title, columns, rows in tables:
        lines += markdown(title, columns, rows)
    relative = os.path.relpath(plot_path.resolve(), path.resolve().parent)
    lines.append(f"![scaling on containers]({relative})")
    path.write_text("\n".join(lines) + "\n")
    console.print(f"tables written: {path}")
    subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py")], check=False)
