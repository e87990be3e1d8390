"""Whether the broker answers, said in one line: `stack up` (`make run`) and `nameko-topology` ask
first, so that a newcomer without RabbitMQ reads what to start instead of kombu's traceback."""

from urllib.parse import urlparse

from amqp.exceptions import AMQPError
from kombu import Connection
from kombu.exceptions import OperationalError

EXIT_NO_BROKER = 2
HOW_TO_START = "start it with tools/test-services (or everything in containers: make up), or set AMQP_URI"


def shown(amqp_uri: str) -> str:
    """The URI without its password, for messages."""
    parsed = urlparse(amqp_uri)
    if parsed.password is None:
        return amqp_uri
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)).geturl()


def unreachable(amqp_uri: str, ssl=None, timeout: float = 3) -> str | None:
    """Why no AMQP connection can be opened to `amqp_uri` (refused, unknown host, login refused),
    or None when one can."""
    try:
        with Connection(amqp_uri, ssl=ssl, connect_timeout=timeout) as connection:
            connection.connect()
    except (OSError, OperationalError, AMQPError) as error:
        return str(error) or type(error).__name__
    return None


def no_broker_message(amqp_uri: str, problem: str) -> str:
    return f"no RabbitMQ at {shown(amqp_uri)} ({problem}): {HOW_TO_START}"
