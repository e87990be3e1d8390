"""The settings agree everywhere they are written: config.yaml (where each default is chosen), the
services' models (common.settings), docs/settings.md's table, docker-compose.yml and .env.example.

`.env.example` against compose's `${VAR:-default}`s: tests/deploy/test_deploy_files.py.
"""

import re

import pytest
from nameko.cli.run import import_service

from common.config import load_config
from common.settings import Settings, SettingsModel, validate
from testkit import compose
from testkit.processes import ROOT

pytestmark = pytest.mark.unit

SERVICES = ["message", "receiver", "sender", "time_consuming"]
# ${VAR} or ${VAR:default} in a config.yaml, as nameko's YAML loader reads them
ENV_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::(?P<default>[^}]*))?\}")
TABLE_ROW = re.compile(r"^\| (?P<names>`[A-Z0-9_]+`(?: / `[A-Z0-9_]+`)*) \| (?P<defaults>[^|]+) \|", re.M)
# Compose's own choice for its containers, not a default: its S3 server's login, its webhook-sink.
COMPOSE_CHOICES = {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "WEBHOOK_URL"}


def model_of(service: str) -> type[SettingsModel]:
    [service_cls] = import_service(f"{service}.service")
    [declared] = [value for value in vars(service_cls).values() if isinstance(value, Settings)]
    return declared.model


def raw_defaults(service: str) -> dict[str, str]:
    """Each variable the service's config.yaml reads, with the default text it gives."""
    lines = (ROOT / "services" / service / "config.yaml").read_text().splitlines()
    text = "\n".join(line.split("#")[0] for line in lines)  # not the comments' ${NAME:default}
    return {match["name"]: match["default"] or "" for match in ENV_VAR.finditer(text)}


def config_without_environment(service: str, monkeypatch) -> dict:
    for name in raw_defaults(service):
        monkeypatch.delenv(name, raising=False)
    return load_config(ROOT / "services" / service / "config.yaml")


@pytest.mark.parametrize("service", SERVICES)
def test_each_model_default_is_the_one_config_yaml_gives(service, monkeypatch):
    model = model_of(service)
    config = config_without_environment(service, monkeypatch)
    settings = validate(config, model)  # config.yaml's defaults are valid

    assert sorted(set(model.model_fields) - set(config)) == []  # nothing the config cannot carry
    for name, field in model.model_fields.items():
        assert field.get_default() == getattr(settings, name), f"{model.__name__}.{name}"


def documented() -> dict[str, str]:
    """docs/settings.md's table: variable -> default as written (`x`, or `empty`)."""
    table = {}
    for row in TABLE_ROW.finditer((ROOT / "docs" / "settings.md").read_text()):
        names = re.findall(r"`([A-Z0-9_]+)`", row["names"])
        defaults = [default.strip() for default in row["defaults"].split(" / ")]
        assert len(names) == len(defaults), row[0]
        for name, default in zip(names, defaults, strict=True):
            assert name not in table, f"{name} documented twice"
            table[name] = "" if default == "empty" else default.strip("`")
    return table


def test_the_docs_table_lists_every_variable_with_its_config_yaml_default():
    read = {}
    for service in SERVICES:
        for name, default in raw_defaults(service).items():
            default = "" if default == "null" else default
            if name == "DATABASE_URL":
                default = default.replace(service, "<service>")
            assert read.setdefault(name, default) == default, f"{name}: two defaults in the config.yamls"

    assert documented() == read


def test_every_setting_in_the_docs_is_documented_once_only():
    pages = sorted((ROOT / "docs").rglob("*.md"))
    names = set(documented())
    for page in pages:
        if page.name == "settings.md":
            continue
        rows = {
            name for row in TABLE_ROW.finditer(page.read_text()) for name in re.findall(r"`(\w+)`", row[1])
        }
        assert not rows & names, f"{page.name} repeats {sorted(rows & names)}: link settings.md instead"


@pytest.fixture(scope="module")
def project():
    return compose.load(ROOT / "docker-compose.yml", environ={})


def test_compose_passes_each_service_only_variables_its_config_reads_with_valid_values(project, monkeypatch):
    for service in project.app_services:
        directory = service.module.removesuffix(".service")
        environment = {key: value for key, value in service.environment.items() if key != "PYTHONWARNINGS"}
        assert sorted(set(environment) - set(raw_defaults(directory))) == [], service.name

        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        validate(load_config(ROOT / "services" / directory / "config.yaml"), model_of(directory))
        for name in environment:
            monkeypatch.delenv(name)


def test_compose_falls_back_to_the_config_yaml_defaults():
    """`KEY: ${KEY:-default}` passes the shell's value through; its default is config.yaml's."""
    text = (ROOT / "docker-compose.yml").read_text()
    read = {name: default for service in SERVICES for name, default in raw_defaults(service).items()}
    passed = dict(re.findall(r"^\s+([A-Z0-9_]+): \$\{\1:-([^}]*)\}", text, re.M))
    settings = {name: passed[name] for name in set(passed) & set(read) - COMPOSE_CHOICES}

    assert {"LOG_LEVEL", "MAX_WORKERS", "RECEIVER_WORK_SECONDS", "S3_BUCKET"} <= set(settings)
    assert settings == {name: read[name] for name in settings}


# In the Kubernetes ConfigMap but no service setting: the cron job's, Python's.
NOT_SERVICE_SETTINGS = {"STUCK_AFTER_MINUTES", "PYTHONWARNINGS"}


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_the_kubernetes_config_map_sets_settings_the_services_read_with_valid_values(overlay, monkeypatch):
    literals = {}
    for path in ("base", overlay):
        text = (ROOT / "deploy" / "k8s" / path / "kustomization.yaml").read_text()
        literals |= dict(re.findall(r"^\s+- ([A-Z0-9_]+)=(\S*)", text, re.M))
    read = {name for service in SERVICES for name in raw_defaults(service)}
    assert sorted(set(literals) - read - NOT_SERVICE_SETTINGS) == []

    for name, value in literals.items():
        monkeypatch.setenv(name, value)
    for service in SERVICES:
        validate(load_config(ROOT / "services" / service / "config.yaml"), model_of(service))
