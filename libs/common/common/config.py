"""Read a service's YAML config exactly as `nameko run --config` does."""

from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

setup_yaml_parser()


def load_config(path: str | Path) -> dict:
    """Parse `path`, substituting `${ENV_VAR:default}` from the current environment."""
    with open(path) as config_file:
        return yaml.safe_load(config_file)
