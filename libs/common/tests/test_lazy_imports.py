"""A service loads only the libraries it uses: what `make bench` measured as memory per instance.

Each check imports a service module in a fresh interpreter, as `nameko run` does (eventlet patched
first), and lists which of the heavy libraries ended up in `sys.modules`.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "pydantic", "boto3", "requests")


def loaded_libraries(module: str) -> set[str]:
    probe = (
        "import eventlet; eventlet.monkey_patch(); import json, sys, importlib; "
        f"importlib.import_module({module!r}); "
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    )
    output = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


# pydantic everywhere: every service validates its settings when its container is built (common.settings)
@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("sender.service", {"pydantic"}),  # no database, no S3, no webhook
        ("receiver.service", {"pydantic", "sqlalchemy"}),  # its receipts
    ],
)
def test_a_service_loads_only_the_libraries_it_uses(module, expected):
    assert loaded_libraries(module) == expected
