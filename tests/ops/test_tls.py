"""`amqps://`: the services, their clients and the probe talk TLS to a broker that only speaks TLS.

Starts a private RabbitMQ node with a TLS listener only (never touching the shared broker) and a
certificate signed by a throwaway CA, which the services trust through AMQP_SSL.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from amqp.exceptions import ChannelError
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from common.client import call_with_retry
from common.topology import rpc_queue
from testkit.processes import BIN, ROOT, ServiceProcess, free_port, wait_for
from tests.ops.test_health_probe import probe

pytestmark = pytest.mark.skipif(
    not (shutil.which("rabbitmq-server") and shutil.which("openssl")),
    reason="needs rabbitmq-server and openssl",
)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_broker():
    # Not under pytest's tmp dir: that one is private to root, and the server runs as rabbitmq.
    base = Path(tempfile.mkdtemp(prefix="nameko_test_tls_"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=base)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr", cwd=base)  # fmt: skip
    (base / "san.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.cnf", "-out", "server.pem", cwd=base)  # fmt: skip
    port, node = free_port(), f"rabbit_test_tls_{free_port()}@localhost"
    (base / "rabbitmq.conf").write_text(
        "listeners.tcp = none\n"
        f"listeners.ssl.default = {port}\n"
        f"ssl_options.cacertfile = {base}/ca.pem\n"
        f"ssl_options.certfile = {base}/server.pem\n"
        f"ssl_options.keyfile = {base}/server.key\n"
        "ssl_options.verify = verify_none\n"
    )
    (base / "plugins").write_text("[].\n")
    for path in [base, *base.iterdir()]:  # the server runs as the rabbitmq user
        shutil.chown(path, "rabbitmq", "rabbitmq")
    env = {
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": f"{base}/mnesia",
        "RABBITMQ_LOG_BASE": f"{base}/log",
        "RABBITMQ_ENABLED_PLUGINS_FILE": f"{base}/plugins",
        "RABBITMQ_CONFIG_FILE": f"{base}/rabbitmq",
    }
    subprocess.run(["rabbitmq-server", "-detached"], env={**os.environ, **env}, check=True)
    try:
        wait_for(
            lambda: (
                subprocess.run(["rabbitmqctl", "-n", node, "await_startup"], capture_output=True).returncode
                == 0
            ),
            timeout=90,
            interval=1,
            message="the TLS broker",
        )
        yield {
            "AMQP_URI": f"amqps://guest:guest@localhost:{port}/",
            "AMQP_SSL": f"{{ca_certs: {base}/ca.pem, cert_reqs: 2}}",  # 2: ssl.CERT_REQUIRED
            "ca": f"{base}/ca.pem",
        }
    finally:
        subprocess.run(["rabbitmqctl", "-n", node, "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def test_services_clients_and_probe_speak_tls(tls_broker, tmp_path):
    env = {
        "AMQP_URI": tls_broker["AMQP_URI"],
        "AMQP_SSL": tls_broker["AMQP_SSL"],
        "DATABASE_URL": f"sqlite:///{tmp_path}/receiver.sqlite3",
    }
    receiver = ServiceProcess("receiver", env, tmp_path)
    try:
        code, report = wait_for(lambda: (result := probe(env))[0] == 0 and result, timeout=60, message="up")
        config = {"AMQP_URI": env["AMQP_URI"], "AMQP_SSL": {"ca_certs": tls_broker["ca"], "cert_reqs": 2}}
        with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
            reply = cluster_rpc.receiver_service.receive_event("over TLS")

        # Without the CA, the broker's certificate is not trusted: no silent fallback to plain text.
        untrusted_code, untrusted = probe({**env, "AMQP_SSL": "null"})
    finally:
        exit_code = receiver.stop()

    assert report["checks"][rpc_queue("receiver_service")] == "ok"
    assert reply == "Event Received: over TLS"
    assert untrusted_code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted["checks"]["broker"]
    assert exit_code == 0


def test_the_cron_job_and_the_client_helper_speak_tls(tls_broker, tmp_path):
    env = {
        "AMQP_URI": tls_broker["AMQP_URI"],
        "AMQP_SSL": tls_broker["AMQP_SSL"],
        "DATABASE_URL": f"sqlite:///{tmp_path}/message.sqlite3",
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    message = ServiceProcess("message", env, tmp_path)
    config = {"AMQP_URI": env["AMQP_URI"], "AMQP_SSL": {"ca_certs": tls_broker["ca"], "cert_reqs": 2}}

    def cron(*arguments):
        return subprocess.run(
            [BIN / "redispatch-stuck", "--older-than-minutes", "0", "--timeout", "20", *arguments],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONWARNINGS": "ignore"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def consuming():
        with Connection(env["AMQP_URI"], ssl=config["AMQP_SSL"]) as connection:
            try:
                return connection.channel().queue_declare(rpc_queue("message_service"), passive=True)[2]
            except ChannelError:
                return 0

    try:
        wait_for(consuming, timeout=60, message="message_service consuming over TLS")
        stored = call_with_retry(config, "message_service", "receive_message", {"message": "tls"})
        from_environment = cron()
        from_config = cron("--config", "services/message/config.yaml")
    finally:
        exit_code = message.stop()

    assert stored["status"] == "received"
    assert from_environment.returncode == 0, from_environment.stderr
    assert from_config.returncode == 0, from_config.stderr
    assert exit_code == 0
