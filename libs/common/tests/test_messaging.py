"""Unit tests: the publish options `common.messaging` builds from a service's config (no broker).

That they keep a busy service alive through an outage is shown against a real broker in
tests/faults/test_broker_outage.py.
"""

import pytest

from common.messaging import Publisher, log_retry, publish_options
from common.settings import PublishRetryPolicy, PublishSettings, validate

pytestmark = pytest.mark.unit


def test_the_configured_policy_applies_to_publishing_and_to_reconnecting():
    settings = validate({"PUBLISH_RETRY_POLICY": {"max_retries": 7, "interval_max": 2}}, PublishSettings)
    options = publish_options(settings)

    publisher = Publisher("amqp://guest:guest@localhost/", **options)

    assert publisher.retry_policy == {
        "max_retries": 7,
        "interval_start": PublishRetryPolicy().interval_start,
        "interval_step": PublishRetryPolicy().interval_step,
        "interval_max": 2,
        "errback": log_retry,
    }
    assert publisher.transport_options["max_retries"] == 7
    assert publisher.transport_options["interval_max"] == 2
    assert publisher.transport_options["connect_retries_timeout"] is None  # no time limit besides the count


def test_without_the_key_the_policy_of_config_yaml_applies_not_nameko_3_tries():
    options = publish_options(PublishSettings())

    assert options["retry_policy"]["max_retries"] == 60  # = config.yaml's (tests/deploy/test_settings.py)
    assert options["transport_options"]["max_retries"] == 60
