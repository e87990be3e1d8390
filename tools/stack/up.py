"""`stack up`, `stack ps|logs`, and `stack stop|kill|start|restart NAME` to act on one instance of a
running `stack up`.

`stack up` keeps its state in `.stack/` next to the compose file: `logs/<instance>.log`,
`state.json` (what runs where, for `stack ps`) and `control.sock`, a Unix socket on which it takes
one line (`stop receiver-2`) and answers one JSON line. The commands go through `stack up` rather
than signalling the instance's pid themselves because only `stack up` applies the restart policy:
an instance stopped on purpose must stay down, one that died must come back, and a signal alone
does not say which (compose asks its engine for the same reason).
"""

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from common.broker import EXIT_NO_BROKER, no_broker_message, unreachable
from testkit.localstack import LocalStack, StackError

COLOURS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96]
ACTIONS = ("stop", "kill", "start", "restart")


def parse_scale(values: list[str]) -> dict[str, int]:
    scale = {}
    for value in values:
        service, _, count = value.partition("=")
        if not count.isdigit():
            raise SystemExit(f"stack: --scale takes SERVICE=NUMBER, not {value!r}")
        scale[service] = int(count)
    return scale


class Printer:
    """Prefixes each line of each instance's output with its name, as `docker compose up` does."""

    def __init__(self, names: list[str], colour: bool):
        self.width = max([len(name) for name in names] + [10])
        self.colour = colour
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}

    def prefix(self, name: str) -> str:
        label = f"{name:<{self.width}} |"
        if not self.colour:
            return label
        code = COLOURS[sum(map(ord, name.rsplit("-", 1)[0])) % len(COLOURS)]
        return f"\033[{code}m{label}\033[0m"

    def line(self, name: str, text: str) -> None:
        print(f"{self.prefix(name)} {text}", flush=True)

    def follow(self, name: str, path: Path) -> None:
        if not path.exists():
            return
        with open(path, "rb") as log:
            log.seek(self.offsets.get(path, 0))
            data = self.partial.pop(path, b"") + log.read()
            self.offsets[path] = log.tell()
        *lines, rest = data.split(b"\n")
        if rest:
            self.partial[path] = rest
        for line in lines:
            self.line(name, line.decode(errors="replace").rstrip())


def write_state(stack: LocalStack, path: Path, ready: set[str]) -> None:
    state = {
        "pid": os.getpid(),
        "instances": {
            name: {
                "pid": instance.pid,
                "running": instance.running,
                "exit_code": instance.exit_code,
                "ready": name in ready,
                "web": instance.web_address and f"http://{instance.web_address}",
                "log": str(instance.log_path),
            }
            for name, instance in stack.instances.items()
        },
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)


def read_state(directory: Path) -> dict:
    path = directory / "state.json"
    try:
        state = json.loads(path.read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError):
        raise SystemExit("stack: no `stack up` is running for this compose file") from None
    return state


def run_up(args) -> int:
    directory = args.state_dir
    try:
        running = read_state(directory)["pid"]
    except SystemExit:
        running = None
    if running:
        print(f"stack: `stack up` is already running here (pid {running}); see `stack ps`", file=sys.stderr)
        return 2
    directory.mkdir(parents=True, exist_ok=True)
    try:
        stack = LocalStack(
            args.compose_file,
            services=args.services or None,
            scale=parse_scale(args.scale),
            log_dir=directory / "logs",
            preferred_ports=True,
            grace_seconds=args.timeout,
        )
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 2
    for log in stack.log_dir.glob("*.log"):
        log.unlink()
    printer = Printer(
        [*stack.instances, *(f"{job.name}-1" for job in stack.project.jobs)], sys.stdout.isatty()
    )
    broker = stack.broker
    if problem := unreachable(broker.amqp_uri):
        print(f"stack: {no_broker_message(broker.amqp_uri, problem)}", file=sys.stderr)
        return EXIT_NO_BROKER
    masked = urlparse(broker.amqp_uri)._replace(
        netloc=f"{broker.auth[0]}:***@{urlparse(broker.amqp_uri).hostname}"
    )
    print(f"stack: broker {masked.geturl()} (port {broker.amqp_port}, vhost {broker.vhost!r})")

    for job in stack.project.jobs_for(stack.services):
        print(f"stack: running {job.name} (one-shot) first")
    try:
        stack.run_jobs()
    except StackError as error:
        for job in stack.project.jobs_for(stack.services):
            printer.follow(f"{job.name}-1", stack.log_dir / f"{job.name}-1.log")
        print(f"stack: {error.args[0].splitlines()[0]}", file=sys.stderr)
        return 1
    for job in stack.project.jobs_for(stack.services):
        printer.follow(f"{job.name}-1", stack.log_dir / f"{job.name}-1.log")

    stopping: list[float] = []

    def on_signal(signum, frame):
        stopping.append(time.monotonic())

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    control = open_control(directory / "control.sock")
    stack.start()
    for name, instance in stack.instances.items():
        web = f"  http://{instance.web_address}" if instance.web_address else ""
        print(f"stack: started {name:<{printer.width}} pid {instance.pid}{web}", flush=True)

    ready: set[str] = set()
    ready_pids: dict[str, int] = {}
    forced = announced = False
    state_path = directory / "state.json"
    while True:
        for name, instance in stack.instances.items():
            printer.follow(name, instance.log_path)
        for name, event in stack.supervise():
            print(f"stack: {name} {event}", flush=True)
            ready.discard(name)
        ready = {name for name in ready if stack.instances[name].pid == ready_pids.get(name)}
        if not stopping:
            for name, instance in stack.instances.items():
                if name not in ready and instance.running and stack.is_ready(name):
                    ready.add(name)
                    ready_pids[name] = instance.pid
                    print(f"stack: {name} ready", flush=True)
            answer_requests(stack, control)
        if stopping and not announced:
            announced = True
            print("stack: stopping gracefully (SIGTERM to every instance; Ctrl-C again to kill)", flush=True)
            stack.send_signal(None, signal.SIGTERM)
        if stopping and not forced and (len(stopping) > 1 or time.monotonic() - stopping[0] > args.timeout):
            forced = True
            print("stack: killing what is left (SIGKILL)", flush=True)
            stack.send_signal(None, signal.SIGKILL)
        write_state(stack, state_path, ready)
        if not any(i.running or i.restart_due for i in stack.instances.values()):
            break
        time.sleep(0.1)

    for name, instance in stack.instances.items():
        printer.follow(name, instance.log_path)
    codes = {name: instance.exit_code for name, instance in stack.instances.items()}
    print("stack: exit codes " + ", ".join(f"{name}={code}" for name, code in codes.items()), flush=True)
    control.close()
    (directory / "control.sock").unlink(missing_ok=True)
    state_path.unlink(missing_ok=True)
    return 0 if stopping else 1


def open_control(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)  # left by a `stack up` that was killed (read_state saw it is gone)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(str(path))
    control.listen()
    control.setblocking(False)  # polled by the supervision loop between its other chores
    return control


def answer_requests(stack: LocalStack, control: socket.socket) -> None:
    """Each waiting request is one line, `<action> <instance or service>`; the answer one JSON line."""
    while True:
        try:
            client, _ = control.accept()
        except BlockingIOError:
            return
        with client:
            client.setblocking(True)
            client.settimeout(5)
            action, _, name = client.makefile().readline().strip().partition(" ")
            answer = carry_out(stack, action, name)
            print(f"stack: {action} {name}: {answer.get('result', answer.get('error'))}", flush=True)
            client.sendall(json.dumps(answer).encode() + b"\n")


def carry_out(stack: LocalStack, action: str, name: str) -> dict:
    try:
        if action == "stop":
            result = stack.stop(name)
        elif action == "kill":
            result = stack.kill(name)
        elif action == "start":
            result = {i.name: f"pid {i.pid}" for i in stack.start(name)}
        elif action == "restart":
            result = {i.name: f"pid {i.pid}" for i in stack.restart(name)}
        else:
            return {"ok": False, "error": f"unknown action {action!r}"}
    except StackError as error:
        return {"ok": False, "error": str(error)}
    return {"ok": True, "result": result}


def run_action(args) -> int:
    read_state(args.state_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(args.timeout + 15)  # a graceful stop takes up to its timeout
        try:
            connection.connect(str(args.state_dir / "control.sock"))
            connection.sendall(f"{args.command} {args.name}\n".encode())
            answer = json.loads(connection.makefile().readline())
        except (OSError, ValueError) as error:
            print(f"stack: `stack up` did not answer the {args.command} request ({error})", file=sys.stderr)
            return 1
    if not answer["ok"]:
        print(f"stack: {answer['error']}", file=sys.stderr)
        return 1
    for name, result in answer["result"].items():
        print(f"{name}: {'exited with ' + str(result) if isinstance(result, int) else result}")
    return 0


def run_ps(args) -> int:
    state = read_state(args.state_dir)
    print(f"{'NAME':<18} {'PID':>7}  {'STATE':<18} WEB")
    for name, instance in state["instances"].items():
        if instance["running"]:
            status = "ready" if instance["ready"] else "starting"
        else:
            status = f"exited ({instance['exit_code']})"
        print(f"{name:<18} {instance['pid'] or '-':>7}  {status:<18} {instance['web'] or ''}".rstrip())
    return 0


def run_logs(args) -> int:
    """What an instance printed (or every instance of a service, or all), each line with its name."""
    logs = sorted((args.state_dir / "logs").glob("*.log"))
    chosen = [log for log in logs if args.name in (None, log.stem, log.stem.rsplit("-", 1)[0])]
    if not chosen:
        print(
            f"stack: no logs for {args.name or 'any instance'} in {args.state_dir / 'logs'}", file=sys.stderr
        )
        return 1
    printer = Printer([log.stem for log in chosen], sys.stdout.isatty())
    for log in chosen:
        printer.follow(log.stem, log)
    return 0


def register(subcommands) -> None:
    up = subcommands.add_parser(
        "up",
        help="run the application services of the compose file as local processes",
        description="Run the compose file's one-shot jobs, then its `nameko run` services as local "
        "processes against this machine's broker (AMQP_URI) and databases. Ctrl-C stops them gracefully.",
    )
    up.add_argument("services", nargs="*", help="only these services (default: all)")
    up.add_argument(
        "--scale", action="append", default=[], metavar="SERVICE=N", help="instances of a service"
    )
    up.add_argument("-t", "--timeout", type=float, default=10, help="seconds to wait for a graceful stop")
    up.set_defaults(run=run_up)

    ps = subcommands.add_parser("ps", help="the instances of the running `stack up`")
    ps.set_defaults(run=run_ps)

    logs = subcommands.add_parser("logs", help="what an instance printed (or a service's, or all)")
    logs.add_argument("name", nargs="?", help="an instance (receiver-2) or a service (receiver)")
    logs.set_defaults(run=run_logs)

    helps = {
        "stop": "stop one instance (SIGTERM, graceful) or all of a service",
        "kill": "kill one instance (SIGKILL)",
        "start": "start a stopped instance again",
        "restart": "stop then start an instance",
    }
    for action in ACTIONS:
        parser = subcommands.add_parser(action, help=helps[action])
        parser.add_argument("name", help="an instance (receiver-2) or a service (receiver)")
        parser.add_argument(
            "-t", "--timeout", type=float, default=10, help="seconds to wait for a graceful stop"
        )
        parser.set_defaults(run=run_action)
