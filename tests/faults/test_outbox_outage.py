"""A 20 s broker outage under load: `POST /messages` still answers, and every message ends `done`.

Real `nameko run` message and time_consuming services on a private RabbitMQ node (stopped and
started here, never the shared one) and the real PostgreSQL.
"""

import eventlet
import requests

from common.topology import rpc_queue
from testkit.processes import ServiceProcess, free_port, wait_for
from tests.ops.logs import consumers_now


def test_a_20s_broker_outage_under_load_loses_no_accepted_message(
    private_broker, private_amqp_uri, postgres, tmp_path
):
    amqp_uri, _ = private_amqp_uri
    port = free_port()
    processes = []
    for service_dir, env in [
        ("time_consuming", {"LOCAL_STORE_DIR": str(tmp_path / "objects")}),
        ("message", {"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}),
    ]:
        (tmp_path / service_dir).mkdir()
        env = {"AMQP_URI": amqp_uri, "DATABASE_URL": postgres(), **env}
        processes.append(ServiceProcess(service_dir, env, tmp_path / service_dir))
    base_url = f"http://127.0.0.1:{port}"
    try:
        for queue in (rpc_queue("message_service"), rpc_queue("time_consuming_service")):
            wait_for(lambda q=queue: consumers_now(amqp_uri, q), timeout=60, message=queue)

        def post(n):
            # A client timeout of a few seconds: the relay's publish retry (minutes) would exceed it.
            return requests.post(
                f"{base_url}/messages", json={"message": f"m{n}", "payload": {"n": n}}, timeout=5
            )

        pool = eventlet.GreenPool()
        busy = list(pool.imap(post, range(20)))  # their events in flight when the broker goes
        private_broker.stop_app()
        during = []
        for n in range(20, 40):  # a 20 s outage with a post every second
            during.append(post(n))
            eventlet.sleep(1)
        stored = [requests.get(f"{base_url}/messages/{r.json()['id']}", timeout=5).json() for r in during]

        private_broker.start_app()
        responses = busy + during

        def statuses():
            return [
                requests.get(f"{base_url}/messages/{r.json()['id']}", timeout=5).json()["status"]
                for r in responses
            ]

        final = wait_for(lambda: (now := statuses()) == ["done"] * 40 and now, timeout=180, message="40 done")
    finally:
        for process in processes:
            process.stop()

    assert [response.status_code for response in responses] == [201] * 40
    assert [message["status"] for message in stored] == ["pending"] * 20
    assert final == ["done"] * 40
