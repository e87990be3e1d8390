"""bench/provider_probe.py times every provider the receiver declares, each with the hooks it runs."""

import json
import subprocess
import sys
from pathlib import Path

from nameko.containers import ServiceContainer

from common.config import load_config
from receiver.service import ReceiverService

ROOT = Path(__file__).resolve().parent.parent


def test_the_probe_times_each_of_the_receivers_providers_and_they_log_as_deployed(tmp_path):
    log = tmp_path / "probe.log"
    with open(log, "wb") as stderr:
        output = subprocess.run(
            [sys.executable, "-m", "bench.provider_probe", "--rounds", "1", "--workers", "20"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            check=True,
        ).stdout
    config = load_config(ROOT / "services" / "receiver" / "config.yaml")
    declared = {type(p).__name__ for p in ServiceContainer(ReceiverService, config).dependencies}

    result = json.loads(output)

    assert set(result["providers_us"]) == declared | {"all of them", "all of them, LOG_LEVEL=WARNING"}
    # WorkerLog writes its line per worker through the config's JSON logging, alone and with the
    # others at INFO; none at WARNING
    worker_lines = [
        line for line in log.read_text().splitlines() if line.startswith("{") and '"nameko.worker"' in line
    ]
    assert len(worker_lines) == 2 * 20
    assert json.loads(worker_lines[0])["message"] == "Rpc receiver_service.receive_event ok"
