"""Per worker: what each of the receiver's dependency providers costs, in microseconds (the probe).

The receiver's providers (structured log line, metrics, graceful shutdown, tracing, database,
settings) run hooks for every worker: `get_dependency`, `worker_setup`, `worker_result`,
`worker_teardown`. Their sum is the receiver's own work per call over a bare nameko echo, the
part of the RPC rows' gap that the project can cut. They are timed here in one process, with the
receiver's container and its config.yaml (logging to a file, as `nameko run` to its log), and no
broker traffic, so the figure is the hooks' alone. Each worker's hooks run in a greenthread of their
own, as nameko runs a worker; a provider's cost is its workers' time less that of workers with no
provider at all, a median over rounds in balanced orders (bench/order.py).

`make bench` (its profile part) runs it in a process of its own, through bench/providers.py: it
patches with eventlet before importing anything, as `nameko run` does. Prints JSON.
"""

import eventlet

eventlet.monkey_patch()  # as `nameko run` does, before anything else is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging.config  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from nameko.containers import ServiceContainer, WorkerContext  # noqa: E402

from bench.order import round_order  # noqa: E402
from bench.processes import ROOT  # noqa: E402
from common.config import load_config  # noqa: E402
from receiver.service import ReceiverService  # noqa: E402

RESULT = "Event Received: {'message': 'Hello World!!'}"


def receiver_container(directory: Path) -> ServiceContainer:
    config = load_config(ROOT / "services" / "receiver" / "config.yaml")
    config["DATABASE_URL"] = f"sqlite:///{directory}/receiver.sqlite3"
    logging.config.dictConfig(config["LOGGING"])
    container = ServiceContainer(ReceiverService, config)
    for provider in container.dependencies:
        provider.setup()
    return container


def one_worker(container, entrypoint, providers):
    """A worker's provider hooks in the order nameko calls them (`ServiceContainer._run_worker`)."""
    worker_ctx = WorkerContext(container, None, entrypoint, args=({"message": "Hello World!!"},))
    for provider in providers:
        provider.get_dependency(worker_ctx)
    for provider in providers:
        provider.worker_setup(worker_ctx)
    for provider in providers:
        provider.worker_result(worker_ctx, RESULT, None)
    for provider in providers:
        provider.worker_teardown(worker_ctx)


def microseconds_per_worker(container, entrypoint, providers, workers: int, level: str) -> float:
    logging.getLogger().setLevel(level)
    started = time.perf_counter()
    for _ in range(workers):
        eventlet.spawn(one_worker, container, entrypoint, providers).wait()
    return (time.perf_counter() - started) / workers * 1e6


NONE = "none (nameko's worker context and greenthread)"
ALL = "all of them"


def measure(rounds: int, workers: int, only: list[str] | None = None) -> dict:
    """Each provider at the config's LOG_LEVEL (INFO), and all of them at INFO and at WARNING (as
    the RPC rows of `make bench` run the services, so their gap has no worker line in it)."""
    with tempfile.TemporaryDirectory(prefix="bench-providers-") as directory:
        container = receiver_container(Path(directory))
        entrypoint = next(e for e in container.entrypoints if e.method_name == "receive_event")
        level = logging.getLevelName(logging.getLogger().level)
        sets = {type(provider).__name__: ([provider], level) for provider in container.dependencies}
        sets[ALL] = (list(container.dependencies), level)
        sets[f"{ALL}, LOG_LEVEL=WARNING"] = (list(container.dependencies), "WARNING")
        if only:
            sets = {label: sets[label] for label in only}
        sets[NONE] = ([], level)
        times = {label: [] for label in sets}
        for round_number in range(rounds):
            for label in round_order(list(sets), round_number):
                providers, log_level = sets[label]
                elapsed = microseconds_per_worker(container, entrypoint, providers, workers, log_level)
                times[label].append(elapsed)
        empty = times.pop(NONE)
        return {
            "workers": workers,
            "rounds": rounds,
            "log_level": level,
            "empty_us": statistics.median(empty),
            "providers_us": {
                label: statistics.median(mine - none for mine, none in zip(values, empty, strict=True))
                for label, values in times.items()
            },
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--workers", type=int, required=True, help="workers per provider per round")
    parser.add_argument("--only", action="append", help="time this provider (class name) alone; repeatable")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rounds, args.workers, args.only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
