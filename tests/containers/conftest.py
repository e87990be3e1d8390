import pytest

from testkit.containers import experiment_stack
from tests.containers.compose_stack import build_images, engine_or_skip

# Passed through, with the endpoint left empty: tracing stays off.
OTEL_TRACES_SAMPLER_ARG = "0.5"


@pytest.fixture(scope="session")
def image_tags(request):
    engine_or_skip()
    return build_images(request.config)


@pytest.fixture(scope="session")
def compose_stack(image_tags):
    """docker-compose.yml up with three receivers and `testkit.containers.experiment_env()`, under a
    project name of its own, for the whole session (test_compose_stack, test_experiments, then
    test_graceful_stop, which stops it); `docker compose down -v` afterwards."""
    extra = {
        # the `load` profile's run (test_compose_stack): a few seconds, a few users
        "LOAD_DURATION": "5s",
        "LOAD_USERS": "4",
        "OTEL_TRACES_SAMPLER_ARG": OTEL_TRACES_SAMPLER_ARG,
    }
    with experiment_stack(image_tags, prefix="nameko-test", extra=extra) as stack:
        yield stack
