"""Run docker-compose.yml's application services as local processes: the same topology without Docker.

    stack = LocalStack(scale={"receiver": 3}, env={"AMQP_URI": "amqp://guest:guest@localhost/test"})
    stack.run_jobs()          # the one-shot services the others wait for (the migrations job)
    stack.start()             # message-1, receiver-1..3, sender-1, time_consuming-1
    stack.wait_ready()        # every instance has its consumers on the broker
    stack.kill("receiver-2")  # SIGKILL one instance; stack.start("receiver-2") brings it back
    stack.stop()              # SIGTERM to all, as `docker compose stop` does; {name: exit code}

What runs is what compose runs, as compose itself renders the file (`docker compose config`, see
stack.compose): each service's `command`, its `environment`, its replica count (`deploy.replicas`,
overridden by `scale`) and its `restart` policy. Only what differs between a container and this
machine changes:

- variables whose value points at a compose service that is not run here (`rabbitmq`, `postgres`,
  `s3`...) are left out, so the service's config.yaml default or your shell's value applies
  (`AMQP_URI` defaults to the broker on localhost, `DATABASE_URL` to a SQLite file);
- your shell's environment wins over the compose file's, and `env` / `service_env` win over both;
- each instance that serves HTTP gets its own free port in `WEB_SERVER_ADDRESS`.
"""

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testkit import compose
from testkit.processes import BIN, ROOT
from testkit.rabbit import RabbitAdmin
from testkit.readiness import Broker, service_queues

GRACE_SECONDS = 10  # docker compose stop's default
MAX_RESTART_DELAY = 10.0
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    pass


def _die_with_parent():
    """In the child: get SIGTERM when the runner dies, so no instance outlives a killed runner."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Instance:
    """One process of a compose service, named as compose names its containers: `receiver-2`."""

    service: compose.ComposeService
    index: int
    log_path: Path
    web_address: str | None = None
    process: subprocess.Popen | None = None
    manually_stopped: bool = False
    restarts: int = 0
    started_at: float = 0.0
    restart_due: float | None = None
    queues: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service.name}-{self.index}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LocalStack:
    def __init__(
        self,
        compose_file: str | Path = "docker-compose.yml",
        services: list[str] | None = None,
        scale: dict[str, int] | None = None,
        env: dict[str, str] | None = None,
        service_env: dict[str, dict[str, str]] | None = None,
        log_dir: str | Path | None = None,
        preferred_ports: bool = False,
        management_url: str | None = None,
        grace_seconds: float = GRACE_SECONDS,
    ):
        self.project = compose.load(compose_file)
        self.cwd = self.project.path.parent
        self.env = dict(env or {})
        self.service_env = {name: dict(values) for name, values in (service_env or {}).items()}
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="stack-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.preferred_ports = preferred_ports
        self.grace_seconds = grace_seconds
        self.lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
        self._supervising = False

        apps = {service.name: service for service in self.project.app_services}
        unknown = [name for name in (services or []) + list(scale or {}) if name not in apps]
        if unknown:
            raise StackError(f"not an application service of {self.project.path.name}: {', '.join(unknown)}")
        self.services = [service for name, service in apps.items() if not services or name in services]
        self.instances: dict[str, Instance] = {}
        for service in self.services:
            for index in range(1, (scale or {}).get(service.name, service.replicas) + 1):
                self._add_instance(service, index)
        amqp_uris = [self.environment(service).get("AMQP_URI") for service in self.services]
        self.broker = Broker(next(filter(None, amqp_uris), None), management_url)

    # -- environment -----------------------------------------------------------------------

    def _points_at_infrastructure(self, value: str) -> bool:
        """A compose service as the host of a URL (`scheme://`, `user@`) or of `host:port`; not a path."""
        return any(
            re.search(rf"(?:(?<=//)|(?<=@)|^){re.escape(host)}(?=[:/]|$)", value)
            for host in self.project.infrastructure
        )

    def environment(self, service: compose.ComposeService) -> dict[str, str]:
        """What a local process of `service` gets, before its instance-specific settings."""
        from_compose = {
            key: value
            for key, value in service.environment.items()
            if not self._points_at_infrastructure(value)
        }
        if "METRICS_PORT" in from_compose:
            from_compose["METRICS_PORT"] = "0"  # containers each have 9100; local instances take a free port
        merged = {**from_compose, **os.environ, **self.env, **self.service_env.get(service.name, {})}
        merged["PATH"] = f"{BIN}{os.pathsep}{merged.get('PATH', os.defpath)}"
        merged.setdefault("PYTHONUNBUFFERED", "1")
        return merged

    def _web_address(self, service: compose.ComposeService, index: int) -> str | None:
        address = service.environment.get("WEB_SERVER_ADDRESS")
        if address is None and not service.container_ports:
            return None
        preferred = int(address.rsplit(":", 1)[-1]) if address else service.container_ports[0]
        port = preferred + index - 1
        if not (self.preferred_ports and _port_is_free(port)):
            port = _free_port()
        return f"127.0.0.1:{port}"

    def _add_instance(self, service, index) -> Instance:
        instance = Instance(
            service=service,
            index=index,
            log_path=self.log_dir / f"{service.name}-{index}.log",
            web_address=self._web_address(service, index),
        )
        self.instances[instance.name] = instance
        return instance

    def _command(self, service: compose.ComposeService) -> list[str]:
        executable, *arguments = service.command
        found = shutil.which(executable, path=str(BIN)) or shutil.which(executable)
        if found is None:
            raise StackError(f"{service.name}: command not found: {executable}")
        return [found, *arguments]

    def _spawn(self, service, env: dict[str, str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                self._command(service),
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the runner only; it forwards SIGTERM
                preexec_fn=_die_with_parent,
            )

    # -- one-shot jobs ----------------------------------------------------------------------

    def run_jobs(self, timeout: float = 300) -> dict[str, int]:
        """Run the one-shot services (e.g. migrations) the selected services wait for; raise if one fails."""
        results = {}
        for job in self.project.jobs_for(self.services):
            log_path = self.log_dir / f"{job.name}-1.log"
            process = self._spawn(job, self.environment(job), log_path)
            try:
                results[job.name] = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise StackError(f"{job.name} did not finish in {timeout}s") from None
            if results[job.name] != 0:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise StackError(f"{job.name} exited with {results[job.name]}:\n{tail}")
        return results

    # -- instances --------------------------------------------------------------------------

    def _names(self, name: str | None) -> list[str]:
        if name is None:
            return list(self.instances)
        if name in self.instances:
            return [name]
        matching = [n for n, instance in self.instances.items() if instance.service.name == name]
        if not matching:
            raise StackError(f"no instance or service named {name!r}; instances: {', '.join(self.instances)}")
        return matching

    def start(self, name: str | None = None) -> list[Instance]:
        """Start an instance, all instances of a service, or everything (None) that is not running."""
        started = []
        with self.lock:
            for instance_name in self._names(name):
                instance = self.instances[instance_name]
                if instance.running:
                    continue
                env = self.environment(instance.service)
                if instance.web_address:
                    env["WEB_SERVER_ADDRESS"] = instance.web_address
                instance.process = self._spawn(instance.service, env, instance.log_path)
                instance.manually_stopped = False
                instance.restart_due = None
                instance.started_at = time.monotonic()
                started.append(instance)
        return started

    def scale(self, service_name: str, count: int) -> list[Instance]:
        """Run `count` instances of a service: starts new ones, stops the highest-numbered extra ones."""
        service = next((s for s in self.services if s.name == service_name), None)
        if service is None:
            raise StackError(f"{service_name} is not run by this stack")
        with self.lock:
            current = [i for i in self.instances.values() if i.service is service]
            for extra in current[count:]:
                self.stop(extra.name)
                del self.instances[extra.name]
            added = [self._add_instance(service, index) for index in range(len(current) + 1, count + 1)]
        for instance in added:
            self.start(instance.name)
        return added

    def send_signal(self, name: str | None, signum: int) -> list[Instance]:
        """Signal an instance, a service's instances or all (None), marking them stopped on purpose."""
        signalled = []
        with self.lock:
            for instance_name in self._names(name):
                instance = self.instances[instance_name]
                instance.manually_stopped = True
                instance.restart_due = None
                if instance.running:
                    with contextlib.suppress(ProcessLookupError):
                        instance.process.send_signal(signum)
                    signalled.append(instance)
        return signalled

    def stop(self, name: str | None = None, timeout: float | None = None) -> dict[str, int | None]:
        """SIGTERM (a graceful stop: nameko finishes its workers), SIGKILL after `timeout` seconds."""
        signalled = self.send_signal(name, signal.SIGTERM)
        deadline = time.monotonic() + (self.grace_seconds if timeout is None else timeout)
        for instance in signalled:
            try:
                instance.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()
        return {n: self.instances[n].exit_code for n in self._names(name)}

    def kill(self, name: str) -> dict[str, int | None]:
        """SIGKILL, as `docker kill` does: no graceful stop, unacknowledged messages are redelivered."""
        for instance in self.send_signal(name, signal.SIGKILL):
            instance.process.wait()
        return {n: self.instances[n].exit_code for n in self._names(name)}

    def restart(self, name: str, timeout: float | None = None) -> list[Instance]:
        self.stop(name, timeout)
        return self.start(name)

    # -- readiness and supervision -----------------------------------------------------------

    def _queues(self, instance: Instance) -> list[str]:
        if not instance.queues:
            instance.queues = [
                q for queues in service_queues(instance.service.module).values() for q in queues
            ]
        return instance.queues

    def is_ready(self, name: str) -> bool:
        instance = self.instances[name]
        if not instance.running:
            return False
        siblings = sum(i.running for i in self.instances.values() if i.service is instance.service)
        return self.broker.is_consuming(instance.pid, self._queues(instance), siblings)

    def wait_ready(self, name: str | None = None, timeout: float = 60) -> None:
        """Wait until each instance's consumers are attached; raise (with its output) if one exits."""
        pending = self._names(name)
        deadline = time.monotonic() + timeout
        while pending:
            for instance_name in list(pending):
                instance = self.instances[instance_name]
                if not instance.running and not self._restarting(instance):
                    raise StackError(
                        f"{instance_name} exited with {instance.exit_code} before it was ready:\n"
                        + "\n".join(instance.output().splitlines()[-20:])
                    )
                if self.is_ready(instance_name):
                    pending.remove(instance_name)
            if pending and time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout}s: {', '.join(pending)}")
            if pending:
                time.sleep(0.1)

    def _restarts_after(self, instance: Instance, code: int | None) -> bool:
        policy = instance.service.restart
        return policy in ("always", "unless-stopped") or (policy.startswith("on-failure") and bool(code))

    def _restarting(self, instance: Instance) -> bool:
        """Whether the supervisor has restarted or will restart this exited instance."""
        if instance.restart_due is not None:
            return True
        return (
            self._supervisor is not None
            and not instance.manually_stopped
            and self._restarts_after(instance, instance.exit_code)
        )

    def supervise(self) -> list[tuple[str, str]]:
        """Notice exits and apply each service's restart policy, like the Docker daemon. Call it often.

        Returns what happened: [(instance name, "exited with N" | "restarted")]. An instance stopped
        or killed through this stack stays down until started again (Docker's `unless-stopped`).
        """
        events = []
        now = time.monotonic()
        with self.lock:
            for instance in self.instances.values():
                if instance.process is None or instance.running or instance.manually_stopped:
                    continue
                if instance.restart_due is None:
                    code = instance.exit_code
                    events.append((instance.name, f"exited with {code}"))
                    if self._restarts_after(instance, code):
                        ran_for = now - instance.started_at
                        instance.restarts = 0 if ran_for > MAX_RESTART_DELAY else instance.restarts + 1
                        instance.restart_due = now + min(0.1 * 2**instance.restarts, MAX_RESTART_DELAY)
                    else:
                        instance.manually_stopped = True  # not restarted: policy says no
                elif now >= instance.restart_due:
                    restarts = instance.restarts
                    self.start(instance.name)
                    instance.restarts = restarts
                    events.append((instance.name, "restarted"))
        return events

    def start_supervisor(self, interval: float = 0.2) -> None:
        """Call `supervise` in a background thread (a greenthread where eventlet has patched threading)."""
        if self._supervisor is not None:
            return
        self._supervising = True

        def loop():
            while self._supervising:
                self.supervise()
                time.sleep(interval)

        self._supervisor = threading.Thread(target=loop, name="stack-supervisor", daemon=True)
        self._supervisor.start()

    def close(self, timeout: float | None = None) -> dict[str, int | None]:
        """Stop supervising and stop every instance gracefully."""
        self._supervising = False
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        return self.stop(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# For tests: the stack on a vhost and PostgreSQL databases of the test's own.


def make_local_stack(amqp_uri: str, postgres, log_dir: Path, **options):
    """docker-compose.yml's services as local processes (`LocalStack`), on this run's vhost.

    Every service that has a `DATABASE_URL` in compose gets a fresh PostgreSQL database, and the
    one-shot jobs get the same URLs under the names compose gives them (`MESSAGE_DATABASE_URL`...).
    Call `run_jobs()`, `start()` and `wait_ready()` on it; `close()` stops it.
    """
    stack = LocalStack(
        ROOT / "docker-compose.yml",
        env={"AMQP_URI": amqp_uri, **options.pop("env", {})},
        log_dir=log_dir,
        management_url=options.pop("management_url", None) or RabbitAdmin().base_url,
        **options,
    )
    databases = {
        service.name: postgres() for service in stack.services if "DATABASE_URL" in service.environment
    }
    for name, url in databases.items():
        stack.service_env.setdefault(name, {})["DATABASE_URL"] = url
    for job in stack.project.jobs:
        stack.service_env.setdefault(job.name, {}).update(
            {f"{name.upper()}_DATABASE_URL": url for name, url in databases.items()}
        )
    return stack


@contextmanager
def running_stack(amqp_uri: str, postgres, log_dir: Path, **options):
    """`make_local_stack`, its jobs run, every instance ready; stopped when the block ends."""
    stack = make_local_stack(amqp_uri, postgres, log_dir, **options)
    stack.run_jobs()
    stack.start()
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.close()
