"""Under services/, nameko's own rpc, RpcProxy, EventDispatcher and event_handler are lint errors.

A service that used nameko's `rpc` beside common.entrypoints' would run two consumers of its RPC
queue; ruff's banned-API rule (services/ruff.toml) stops it at `make lint`.
"""

import subprocess

import pytest

from testkit.processes import BIN, ROOT

BANNED = {
    "nameko.rpc.rpc": "from nameko.rpc import rpc",
    "nameko.rpc.RpcProxy": "from nameko.rpc import RpcProxy",
    "nameko.events.EventDispatcher": "from nameko.events import EventDispatcher",
    "nameko.events.event_handler": "from nameko.events import event_handler",
}
SERVICE = """\
{imports}


class Probe:
    name = "probe"
"""


def ruff(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [BIN / "ruff", "check", "--no-cache", "--output-format", "concise", "--select", "TID251"]
    return subprocess.run([*command, *args], cwd=ROOT, input=stdin, capture_output=True, text=True)


@pytest.mark.parametrize("name", BANNED)
def test_the_services_config_bans_nameko_entrypoints(tmp_path, name):
    probe = tmp_path / "service.py"
    probe.write_text(SERVICE.format(imports=BANNED[name]))

    result = ruff("--config", "services/ruff.toml", str(probe))

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"TID251 `{name}` is banned: use common.entrypoints." in result.stdout


def test_an_attribute_use_is_banned_too(tmp_path):
    probe = tmp_path / "service.py"
    probe.write_text("import nameko.rpc\n\n\n@nameko.rpc.rpc\ndef call():\n    pass\n")

    result = ruff("--config", "services/ruff.toml", str(probe))

    assert "TID251 `nameko.rpc.rpc` is banned" in result.stdout


def test_make_lint_applies_it_under_services_only():
    # `ruff check .` takes each file's nearest config: services/ruff.toml for service code.
    code = SERVICE.format(imports="\n".join(BANNED.values()))

    in_a_service = ruff("--stdin-filename", "services/sender/sender/probe.py", "-", stdin=code)
    in_common = ruff("--stdin-filename", "libs/common/common/probe.py", "-", stdin=code)

    assert in_a_service.stdout.count("TID251") == len(BANNED), in_a_service.stdout
    assert in_common.returncode == 0, in_common.stdout


def test_the_project_flavours_pass():
    code = SERVICE.format(
        imports="from common.entrypoints import EventDispatcher, RpcProxy, event_handler, http, rpc, timer"
    )

    result = ruff("--stdin-filename", "services/sender/sender/probe.py", "-", stdin=code)

    assert result.returncode == 0, result.stdout
