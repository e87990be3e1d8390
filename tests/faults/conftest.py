import pytest

from tests.fixtures import run_name
from tests.private_broker import PrivateBroker


@pytest.fixture(scope="session")
def private_broker():
    """A RabbitMQ node of this run's own, for tests that crash, stop or restart the broker."""
    with PrivateBroker() as broker:
        yield broker


@pytest.fixture
def private_amqp_uri(private_broker):
    """A fresh vhost on the private broker (it may have been restarted since the last test)."""
    private_broker.wait_until_serving()
    vhost = run_name()
    private_broker.admin.create_vhost(vhost)
    return private_broker.amqp_uri + vhost, vhost
