"""A `receive_message` that committed but never acked runs again: it must store nothing new.

Real `nameko run` message services on the real broker and PostgreSQL, killed with SIGKILL: exactly
after the commit and before the reply (fail point `message.after_commit`), and at random points
under a stream of calls. The broker redelivers the unacked request to the restarted process, which
must find the message that request stored and answer with it.
"""

import itertools
import signal

import eventlet
import pytest
import sqlalchemy
from nameko.exceptions import RpcTimeout
from nameko.standalone.rpc import ClusterRpcProxy

from common.client import call_with_retry
from common.topology import rpc_queue
from testkit.processes import ServiceProcess, free_port, wait_for
from tests.ops.logs import consumers_now

QUEUE = rpc_queue("message_service")


@pytest.fixture
def amqp_uri(own_vhost):
    """A vhost of this test's own: no other test's consumer on message_service's queue."""
    return own_vhost[1]


class MessageProcesses:
    """`nameko run` message services started one after another on one database: `start(**env)`."""

    def __init__(self, amqp_uri: str, database_url: str, log_dir):
        self.amqp_uri, self.database_url, self.log_dir = amqp_uri, database_url, log_dir
        self.engine = sqlalchemy.create_engine(database_url)
        self.started = []

    def __call__(self, **env) -> ServiceProcess:
        log_dir = self.log_dir / f"run-{len(self.started)}"
        log_dir.mkdir()
        base = {
            "AMQP_URI": self.amqp_uri,
            "DATABASE_URL": self.database_url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        process = ServiceProcess("message", {**base, **env}, log_dir)
        self.started.append(process)
        wait_for(
            lambda: consumers_now(self.amqp_uri, QUEUE) == 1, timeout=60, message="message_service consuming"
        )
        return process

    def stored(self) -> dict[str, list[str]]:
        """{message text: [ids of the messages stored with it]}."""
        with self.engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT message, id FROM messages")).all()
        by_text = {}
        for text, message_id in rows:
            by_text.setdefault(text, []).append(message_id)
        return by_text

    def outbox_events(self, message_id: str) -> int:
        with self.engine.connect() as connection:
            query = sqlalchemy.text("SELECT count(*) FROM outbox WHERE payload::jsonb ->> 'message_id' = :id")
            return connection.execute(query, {"id": message_id}).scalar()

    def close(self):
        for process in self.started:
            process.stop()
        self.engine.dispose()


@pytest.fixture
def message_processes(amqp_uri, postgres, tmp_path):
    processes = MessageProcesses(amqp_uri, postgres(), tmp_path)
    yield processes
    processes.close()


def killed(process: ServiceProcess) -> int:
    return process.process.wait(30)


def test_a_request_redelivered_after_a_kill_past_the_commit_gets_the_same_message(
    amqp_uri, message_processes
):
    first = message_processes(FAILPOINTS="message.after_commit=kill")
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster_rpc:
        reply = cluster_rpc.message_service.receive_message.call_async(
            {"message": "killed after the commit", "payload": {"n": 1}}
        )
        exit_code = killed(first)  # committed, then SIGKILL: no reply, no ack
        message_processes()  # the broker redelivers the request to this one
        answer = reply.result()

    assert exit_code == -signal.SIGKILL
    assert message_processes.stored()["killed after the commit"] == [answer["id"]]
    assert answer["status"] == "pending"
    assert message_processes.outbox_events(answer["id"]) == 1


def test_a_client_that_gave_up_retries_with_its_key_and_gets_the_same_message(amqp_uri, message_processes):
    first = message_processes(FAILPOINTS="message.after_commit=kill")
    event = {"message": "retried by its client", "idempotency_key": "client-key-1"}
    # The service dies after the commit: no reply ever comes.
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=5) as cluster_rpc, pytest.raises(RpcTimeout):
        cluster_rpc.message_service.receive_message(event)
    exit_code = killed(first)
    message_processes()  # handles the redelivered request; its reply goes to a caller that left

    answer = call_with_retry(amqp_uri, "message_service", "receive_message", event, timeout=10)

    assert exit_code == -signal.SIGKILL
    assert message_processes.stored()["retried by its client"] == [answer["id"]]


def test_a_stream_of_calls_through_three_kills_stores_each_message_once(amqp_uri, message_processes):
    process = message_processes()
    answered, sending = {}, [True]
    numbers = itertools.count()

    def client():
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=120) as cluster_rpc:
            while sending[0]:
                text = f"stream-{next(numbers)}"
                answered[text] = cluster_rpc.message_service.receive_message({"message": text})["id"]

    pool = eventlet.GreenPool()
    clients = [pool.spawn(client) for _ in range(10)]  # 10 calls in flight at any time
    exit_codes = []
    for _ in range(3):
        so_far = len(answered)
        wait_for(lambda n=so_far: len(answered) >= n + 30, timeout=120, message="calls answered")
        process.process.send_signal(signal.SIGKILL)  # wherever its 10 workers are
        exit_codes.append(killed(process))
        process = message_processes()
    so_far = len(answered)
    wait_for(lambda: len(answered) >= so_far + 30, timeout=120, message="calls answered after the kills")
    sending[0] = False
    for running in clients:
        running.wait()

    stored = message_processes.stored()
    assert exit_codes == [-signal.SIGKILL] * 3
    assert len(answered) >= 120
    assert {text: ids for text, ids in stored.items() if len(ids) > 1} == {}  # no duplicate
    assert {text: [message_id] for text, message_id in answered.items()} == {
        text: stored.get(text) for text in answered
    }  # every answered call's message is stored, with the id it was answered with


@pytest.mark.timeout(300)  # a broker node restart alone can take a minute on a busy machine
def test_a_stream_of_retrying_clients_through_kills_and_a_broker_restart_stores_each_message_once(
    private_broker, private_amqp_uri, postgres, tmp_path
):
    # A broker restart loses the clients' reply queues: they call again, with the same key.
    amqp_uri, _ = private_amqp_uri
    start = MessageProcesses(amqp_uri, postgres(), tmp_path)
    answered, sending = {}, [True]
    numbers = itertools.count()

    def client():
        while sending[0]:
            text = f"stream-{next(numbers)}"
            event = {"message": text, "idempotency_key": text}
            answered[text] = call_with_retry(
                amqp_uri, "message_service", "receive_message", event, timeout=10, retry_for=300
            )["id"]

    def after_30_more():
        so_far = len(answered)
        wait_for(lambda: len(answered) >= so_far + 30, timeout=180, message="30 more calls answered")

    try:
        process = start()
        pool = eventlet.GreenPool()
        clients = [pool.spawn(client) for _ in range(10)]
        for _ in range(3):
            after_30_more()
            process.process.send_signal(signal.SIGKILL)
            killed(process)
            process = start()
        after_30_more()
        private_broker.restart()
        after_30_more()
        sending[0] = False
        for running in clients:
            running.wait()
        stored = start.stored()
    finally:
        start.close()

    assert len(answered) >= 150
    assert {text: ids for text, ids in stored.items() if len(ids) > 1} == {}
    assert {text: [message_id] for text, message_id in answered.items()} == {
        text: stored.get(text) for text in answered
    }
