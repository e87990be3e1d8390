"""bench/provider_probe.py times every provider the receiver declares, each with the hooks it runs."""

import json

from nameko.containers import ServiceContainer

from bench.processes import ROOT
from bench.providers import PROBE_LOG, TRACING_ON, measure_providers
from common.config import load_config
from receiver.service import ReceiverService


def test_the_probe_times_each_of_the_receivers_providers_and_tracing_on_and_they_log_as_deployed(tmp_path):
    config = load_config(ROOT / "services" / "receiver" / "config.yaml")
    declared = {type(p).__name__ for p in ServiceContainer(ReceiverService, config).dependencies}

    result = measure_providers(rounds=1, log_dir=tmp_path, workers=20)

    assert set(result["providers_us"]) == declared | {
        "all of them",
        "all of them, LOG_LEVEL=WARNING",
        TRACING_ON,
    }
    assert result["otlp_export_requests"] > 0  # the tracing-on row did export its spans
    # WorkerLog writes its line per worker through the config's JSON logging, alone and with the
    # others at INFO; none at WARNING
    worker_lines = [
        line
        for line in (tmp_path / PROBE_LOG).read_text().splitlines()
        if line.startswith("{") and '"nameko.worker"' in line
    ]
    assert len(worker_lines) == 2 * 20
    assert json.loads(worker_lines[0])["message"] == "Rpc receiver_service.receive_event ok"
