"""message_service validates `payload_processed` with its published contract (common.contracts)."""

import logging

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from message.service import MessageService
from tests.support import free_port, wait_for


def worker_outcomes(caplog, entrypoint):
    return [r.outcome for r in caplog.records if r.name == "nameko.worker" and entrypoint in r.getMessage()]


def test_an_invalid_payload_processed_is_rejected_and_records_nothing(
    container_factory, service_config, caplog
):
    config = service_config("message", WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    container_factory(MessageService, config).start()
    dispatch = event_dispatcher(config)
    caplog.set_level(logging.INFO, logger="nameko.worker")
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        message_id = cluster_rpc.message_service.receive_message({"message": "m", "payload": [1]})["id"]

        dispatch(
            "time_consuming_service", "payload_processed", {"message_id": message_id, "status": "exploded"}
        )
        outcomes = wait_for(lambda: worker_outcomes(caplog, "on_payload_processed"), message="the handler")

        assert outcomes == ["rejected"]
        assert cluster_rpc.message_service.get_message(message_id)["status"] == "pending"

        dispatch("time_consuming_service", "payload_processed", {"message_id": message_id, "status": "done"})
        wait_for(
            lambda: len(worker_outcomes(caplog, "on_payload_processed")) == 2, message="the second report"
        )

        assert worker_outcomes(caplog, "on_payload_processed") == ["rejected", "ok"]
        assert cluster_rpc.message_service.get_message(message_id)["status"] == "done"
