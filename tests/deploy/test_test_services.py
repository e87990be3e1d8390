"""`tools/test-services` (what `make test` runs first) on a machine where it can do nothing."""

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.docs import replayed_blocks

ROOT = Path(__file__).resolve().parents[2]


def test_with_nothing_running_and_nothing_allowed_it_stops_at_once_with_one_line():
    # A network namespace of its own: nothing listens on its loopback. As `nobody` (not root) and with
    # a PATH that has no docker and no apt-get, none of the ways to bring the services up applies.
    bin_dir = Path(tempfile.mkdtemp(prefix="test-services-bin-"))
    bin_dir.chmod(0o755)
    for tool in ("bash", "curl", "psql", "seq", "sleep", "id", "env"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    try:
        result = subprocess.run(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec setpriv --reuid=65534 --regid=65534 "
             f"--clear-groups env -i PATH={bin_dir} bash -s"],
            input=(ROOT / "tools" / "test-services").read_text(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        shutil.rmtree(bin_dir)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "missing RabbitMQ with its management plugin" in lines[0]
    assert "PostgreSQL on localhost:5432" in lines[0]
    (shown,) = replayed_blocks("tests/deploy/test_test_services.py")
    assert shown.output == lines  # the testing page shows the very line
