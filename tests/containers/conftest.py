import os
import uuid

import pytest

from tests.containers.compose_stack import ComposeStack, build_images, engine_or_skip

# The values the tests pass through from "the shell" (the environment compose is run with): each
# call works 1 s, at most 3 at once per receiver, so the experiments find calls still in flight
# when they kill, stop or cut off a receiver.
RECEIVER_WORK_SECONDS = "1"
MAX_WORKERS = "3"
# Passed through, with the endpoint left empty: tracing stays off.
OTEL_TRACES_SAMPLER_ARG = "0.5"


@pytest.fixture(scope="session")
def image_tags(request):
    engine_or_skip()
    return build_images(request.config)


@pytest.fixture(scope="session")
def compose_stack(image_tags):
    """docker-compose.yml up with three receivers, under a project name of its own, for the whole
    session (test_compose_stack, test_experiments, then test_graceful_stop, which stops it);
    `docker compose down -v` afterwards."""
    stack = ComposeStack(
        f"nameko-test-{os.getpid()}-{uuid.uuid4().hex[:4]}",
        {
            **image_tags,
            # 0: any free host port; the machine's own RabbitMQ keeps 5672 and 15672
            "RABBITMQ_PORT": "0",
            "RABBITMQ_MANAGEMENT_PORT": "0",
            "MESSAGE_HTTP_PORT": "0",
            "PROMETHEUS_PORT": "0",
            "RECEIVER_WORK_SECONDS": RECEIVER_WORK_SECONDS,
            "MAX_WORKERS": MAX_WORKERS,
            "WEBHOOK_SINK_PORT": "0",
            # the `load` profile's run (test_compose_stack): a few seconds, a few users
            "LOAD_DURATION": "5s",
            "LOAD_USERS": "4",
            "OTEL_TRACES_SAMPLER_ARG": OTEL_TRACES_SAMPLER_ARG,
        },
    )
    try:
        stack.up("--scale", "receiver=3")
        yield stack
    finally:
        stack.down()
