"""Static checks on what ships: JSON only, secrets only from the environment, no backdoor."""

import re

import pytest
import yaml

from testkit.processes import ROOT

CONFIGS = sorted(ROOT.glob("services/*/config.yaml"))
SHIPPED = [ROOT / "Makefile", *ROOT.glob("docker-compose*.yml"), *ROOT.glob("deploy/**/*"), *CONFIGS]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.parent.name)
def test_every_service_speaks_json_only(config):
    settings = yaml.safe_load(config.read_text())

    assert settings["serializer"] == "json"
    assert "ACCEPT" not in settings  # nameko then accepts only the serializer it uses


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.parent.name)
def test_urls_and_credentials_come_from_the_environment(config):
    for line in config.read_text().splitlines():
        if line.startswith("#") or not re.search(r"://|PASSWORD|SECRET|TOKEN|KEY:", line):
            continue
        key, _, value = line.partition(":")
        assert re.fullmatch(r"\s*\$\{[A-Z0-9_]+:.*\}\s*", value), (
            f"{config.name}: {key} is not from the environment"
        )


def test_no_shipped_command_opens_nameko_s_backdoor():
    # `nameko run --backdoor-port` serves a Python shell inside the service to anyone who connects.
    for path in SHIPPED:
        if path.is_file():
            assert "backdoor" not in path.read_text(errors="replace"), path
