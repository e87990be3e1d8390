"""Read docker-compose.yml the way `docker compose` does, for the parts a local runner needs.

Interpolation follows the Compose specification: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:?error}`, `${VAR?error}`, `$VAR` and `$$` for a literal `$`, with values from the shell
environment first and the `.env` file next to the compose file second.
"""

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

APP_COMMAND = ("nameko", "run")
ONE_SHOT = "service_completed_successfully"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class ComposeLoader(yaml.SafeLoader):
    """YAML as compose reads it, without the `${VAR:default}` resolver nameko adds to SafeLoader."""


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if not tag.endswith("env_var")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ComposeError(ValueError):
    """The compose file cannot be used as it is: a required variable is unset, a service is unknown..."""


def read_dotenv(path: Path) -> dict[str, str]:
    values = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def interpolate(text: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        value, op, arg = variables.get(name), match["op"], match["arg"] or ""
        is_set, is_empty = value is not None, not value
        if op == ":-":
            return arg if is_empty else value
        if op == "-":
            return arg if not is_set else value
        if op == ":+":
            return "" if is_empty else arg
        if op == "+":
            return "" if not is_set else arg
        if op in (":?", "?") and (not is_set or (op == ":?" and is_empty)):
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node, variables):
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, variables) for key, value in node.items()}
    return node


def _as_dict(entries, separator="=") -> dict[str, str]:
    """Compose accepts both `KEY: value` mappings and `KEY=value` lists."""
    if isinstance(entries, dict):
        return {
            key: "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in entries.items()
        }
    result = {}
    for entry in entries or []:
        key, _, value = str(entry).partition(separator)
        result[key] = value
    return result


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
        names = {
            dependency
            for service in self.app_services
            for dependency, condition in service.depends_on.items()
            if condition == ONE_SHOT
        }
        return [self.services[name] for name in self.services if name in names]

    def jobs_for(self, services: list[ComposeService]) -> list[ComposeService]:
        wanted = {dep for s in services for dep, condition in s.depends_on.items() if condition == ONE_SHOT}
        return [job for job in self.jobs if job.name in wanted]

    @property
    def infrastructure(self) -> list[str]:
        """Services a local run finds on this machine instead: the broker, the databases, S3..."""
        local = {service.name for service in self.app_services} | {job.name for job in self.jobs}
        return [name for name in self.services if name not in local]


def _container_port(spec) -> int | None:
    if isinstance(spec, dict):
        return int(spec["target"])
    target = str(spec).rsplit(":", 1)[-1].split("/")[0]
    return int(target) if target.isdigit() else None


def load(path: str | Path = "docker-compose.yml", environ: dict[str, str] | None = None) -> ComposeProject:
    path = Path(path).resolve()
    variables = {**read_dotenv(path.parent / ".env"), **(os.environ if environ is None else environ)}
    document = _interpolate_tree(yaml.load(path.read_text(), Loader=ComposeLoader), variables)
    services = {}
    for name, spec in (document.get("services") or {}).items():
        command = spec.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        depends_on = spec.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = dict.fromkeys(depends_on, "service_started")
        else:
            depends_on = {
                dep: (options or {}).get("condition", "service_started")
                for dep, options in depends_on.items()
            }
        ports = [_container_port(port) for port in spec.get("ports") or []]
        services[name] = ComposeService(
            name=name,
            command=[str(part) for part in command],
            environment=_as_dict(spec.get("environment")),
            replicas=int((spec.get("deploy") or {}).get("replicas", 1)),
            restart=str(spec.get("restart", "no")),
            depends_on=depends_on,
            container_ports=[port for port in ports if port],
        )
    return ComposeProject(path=path, services=services)
