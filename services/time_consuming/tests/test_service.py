"""time_consuming_service in a real container: real broker, real PostgreSQL."""

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support import wait_for
from time_consuming.service import TimeConsumingService


def test_the_same_event_twice_makes_one_job(container_factory, service_config):
    config = service_config("time_consuming")
    container_factory(TimeConsumingService, config).start()
    dispatch = event_dispatcher(config)

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        for _ in range(2):
            dispatch("message_service", "heavy_payload_event", {"message_id": "m-twice", "payload": {"a": 1}})
        job = wait_for(lambda: cluster_rpc.time_consuming_service.get_job("m-twice"), message="the job")
        dispatch("message_service", "heavy_payload_event", {"message_id": "m-sentinel", "payload": {}})
        wait_for(lambda: cluster_rpc.time_consuming_service.get_job("m-sentinel"), message="the sentinel job")
        job = cluster_rpc.time_consuming_service.get_job("m-twice")

    # The sentinel was dispatched after both copies and one queue delivers in order: both were handled.
    assert job == {"message_id": "m-twice", "state": "done", "attempts": 1, "last_error": None}


def test_concurrent_duplicates_do_the_work_once(container_factory, service_config):
    config = service_config("time_consuming", max_workers=10)
    container_factory(TimeConsumingService, config).start()
    dispatch = event_dispatcher(config)

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        for _ in range(10):
            dispatch("message_service", "heavy_payload_event", {"message_id": "m-burst", "payload": {}})
        dispatch("message_service", "heavy_payload_event", {"message_id": "m-after-burst", "payload": {}})
        wait_for(
            lambda: cluster_rpc.time_consuming_service.get_job("m-after-burst"), message="the sentinel job"
        )
        job = cluster_rpc.time_consuming_service.get_job("m-burst")

    assert job["attempts"] == 1
