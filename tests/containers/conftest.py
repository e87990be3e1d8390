import pytest

from stack.containers import experiment_stack
from tests.containers.compose_stack import build_images, engine_or_skip


@pytest.fixture(scope="session")
def app_image_tag(request):
    engine_or_skip()
    return build_images(request.config)


@pytest.fixture(scope="session")
def compose_stack(app_image_tag):
    """docker-compose.yml up with three receivers and `stack.containers.experiment_env()`, under a
    project name of its own, for the whole session (test_compose_stack, test_experiments, then
    test_graceful_stop, which stops it); `docker compose down -v` afterwards."""
    with experiment_stack(app_image_tag, prefix="nameko-test") as stack:
        yield stack
