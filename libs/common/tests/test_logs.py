"""JsonFormatter: one JSON object per line, with what a worker's line needs and nothing it must collect."""

import json
import logging

import pytest
from nameko.testing.services import entrypoint_hook

from common.entrypoints import rpc
from common.logs import WORKER_LOGGER, JsonFormatter, WorkerLog


@pytest.fixture
def restore_record_flags():
    flags = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    yield
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags


@pytest.mark.unit
def test_a_line_is_json_with_the_service_and_the_extra_fields(restore_record_flags):
    formatter = JsonFormatter(service="receiver_service")
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hi %s", "args": ("there",)})
    record.outcome = "ok"

    line = json.loads(formatter.format(record))

    assert {key: line[key] for key in ("service", "message", "outcome")} == {
        "service": "receiver_service",
        "message": "hi there",
        "outcome": "ok",
    }
    assert not {"thread", "threadName", "process", "processName"} & set(line)


@pytest.mark.unit
def test_records_no_longer_collect_threads_or_processes_once_it_is_configured(restore_record_flags):
    """Under eventlet `threading.current_thread()` in each worker's first record is a third of its line."""
    JsonFormatter(service="receiver_service")

    record = logging.makeLogRecord({})

    assert (record.threadName, record.processName, record.process) == (None, None, None)


class Logged:
    name = "logged"

    log = WorkerLog()

    @rpc
    def hello(self):
        return "hi"


@pytest.mark.parametrize(("level", "worker_lines"), [("INFO", 1), ("WARNING", 0)])
def test_a_worker_logs_its_line_at_info_and_none_at_warning(
    container_factory, amqp_uri, caplog, level, worker_lines
):
    """LOG_LEVEL=WARNING drops the one line per worker, the largest per-call cost of the project's
    providers (docs/benchmarks.md)."""
    container = container_factory(Logged, {"AMQP_URI": amqp_uri})
    container.start()
    caplog.set_level(level, logger=WORKER_LOGGER)

    with entrypoint_hook(container, "hello") as hello:
        assert hello() == "hi"

    assert len([r for r in caplog.records if r.name == WORKER_LOGGER]) == worker_lines
