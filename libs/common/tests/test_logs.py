"""JsonFormatter: one JSON object per line, with what a worker's line needs and nothing it must collect."""

import json
import logging

import pytest

from common.logs import JsonFormatter

pytestmark = pytest.mark.unit


@pytest.fixture
def restore_record_flags():
    flags = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    yield
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags


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


def test_records_no_longer_collect_threads_or_processes_once_it_is_configured(restore_record_flags):
    """Under eventlet `threading.current_thread()` in each worker's first record is a third of its line."""
    JsonFormatter(service="receiver_service")

    record = logging.makeLogRecord({})

    assert (record.threadName, record.processName, record.process) == (None, None, None)
