import os
import uuid

import pytest

from tests.containers.compose_stack import ComposeStack, build_images, engine_or_skip

# The values the tests pass through from "the shell" (the environment compose is run with).
RECEIVER_WORK_SECONDS = "0.2"
MAX_WORKERS = "7"


@pytest.fixture(scope="session")
def app_image_tag(request):
    engine_or_skip()
    return build_images(request.config)


def stack_up(app_image_tag, **settings):
    """docker-compose.yml up with three receivers, under a project name of its own; down -v after."""
    stack = ComposeStack(
        f"nameko-test-{os.getpid()}-{uuid.uuid4().hex[:4]}",
        {
            "IMAGE_TAG": app_image_tag,
            # 0: any free host port; the machine's own RabbitMQ keeps 5672 and 15672
            "RABBITMQ_PORT": "0",
            "RABBITMQ_MANAGEMENT_PORT": "0",
            "MESSAGE_HTTP_PORT": "0",
            "RECEIVER_WORK_SECONDS": RECEIVER_WORK_SECONDS,
            "MAX_WORKERS": MAX_WORKERS,
            **settings,
        },
    )
    try:
        stack.up("--scale", "receiver=3")
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def compose_stack(app_image_tag):
    yield from stack_up(app_image_tag)
