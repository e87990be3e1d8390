"""`nameko-topology` on a fresh vhost: events sent before time_consuming_service starts are not lost."""

import subprocess

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from testkit.processes import BIN, ROOT, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE
from time_consuming.service import TimeConsumingService


def test_events_sent_after_the_topology_step_wait_for_their_handler(
    own_vhost, rabbit_admin, container_factory, service_config, tmp_path
):
    fresh_vhost, amqp_uri = own_vhost
    config = service_config("time_consuming", AMQP_URI=amqp_uri, LOCAL_STORE_DIR=str(tmp_path / "objects"))
    env = {"AMQP_URI": amqp_uri, "PATH": str(BIN)}

    declared = subprocess.run(
        [
            BIN / "nameko-topology",
            "--config",
            "services/time_consuming/config.yaml",
            "time_consuming.service",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert declared.returncode == 0, declared.stderr
    queues = {queue["name"]: queue for queue in rabbit_admin.queues(fresh_vhost)}
    handler_queue = HEAVY_PAYLOAD_QUEUE
    retry_queues = {f"{handler_queue}.retry-{delay}s": delay for delay in (5, 30, 120, 600)}
    assert set(queues) == {"dead-letters", handler_queue, *retry_queues}
    assert all(queues[name]["durable"] for name in queues)
    for name, delay in retry_queues.items():  # each hands its messages back to the handler's queue
        assert queues[name]["arguments"] == {
            "x-message-ttl": delay * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": handler_queue,
        }

    # message_service's events, before any time_consuming_service exists
    dispatch = event_dispatcher(config)
    for number in range(3):
        dispatch("message_service", "heavy_payload_event", {"message_id": f"early-{number}", "payload": {}})

    container_factory(TimeConsumingService, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        for number in range(3):
            job = wait_for(  # each step is committed as it happens: wait for the last one
                lambda n=number: (
                    (job := cluster_rpc.time_consuming_service.get_job(f"early-{n}"))
                    and job["state"] == "notified"
                    and job
                ),
                message="early jobs",
            )
            assert job["state"] == "notified"
