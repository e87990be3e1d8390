"""Read a service's YAML config exactly as `nameko run --config` does."""

import os
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

setup_yaml_parser()


def load_config(path: str | Path) -> dict:
    """Parse `path`, substituting `${ENV_VAR:default}` from the current environment."""
    with open(path) as config_file:
        return yaml.safe_load(config_file)


DEFAULT_AMQP_URI = "amqp://guest:guest@localhost"


def client_config(path: str | Path | None = None) -> dict:
    """The broker settings of a command that is not a service (cron job, client, probe).

    With `path` (the command's `--config`), the service's config.yaml, read as `nameko run` reads it;
    without, the same two variables from the environment: `AMQP_URI`, and `AMQP_SSL` (YAML, as in
    the config files), so TLS settings apply either way.
    """
    if path is not None:
        return load_config(path)
    ssl = os.environ.get("AMQP_SSL")
    return {
        "AMQP_URI": os.environ.get("AMQP_URI") or DEFAULT_AMQP_URI,
        "AMQP_SSL": yaml.safe_load(ssl) if ssl else None,
        "serializer": "json",
    }
