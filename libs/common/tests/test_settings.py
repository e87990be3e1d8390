"""Typed settings (common.settings): an invalid value is one line naming the key, at container start."""

from types import SimpleNamespace

import pytest
from nameko.containers import ServiceContainer

from common.retries import event_handler
from common.settings import (
    CommonSettings,
    RetrySettings,
    Settings,
    SettingsError,
    StorageSettings,
    WebhookSettings,
    settings_of,
    validate,
)
from common.storage import Storage

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "config, line",
    [
        (
            {"WEBHOOK_RETRIES": "abc"},
            "settings: WEBHOOK_RETRIES: Input should be a valid integer, got 'abc'",
        ),
        (
            {"WEBHOOK_READ_TIMEOUT": 0},
            "settings: WEBHOOK_READ_TIMEOUT: Input should be greater than 0, got 0",
        ),
        (
            {"WEBHOOK_BACKOFF": "soon", "WEBHOOK_RETRIES": -1},
            "settings: WEBHOOK_RETRIES: Input should be greater than or equal to 0, got -1; "
            "WEBHOOK_BACKOFF: Input should be a valid number, got 'soon'",
        ),
    ],
)
def test_an_invalid_value_is_one_line_naming_each_key(config, line):
    with pytest.raises(SettingsError) as raised:
        validate(config, WebhookSettings)
    assert str(raised.value) == line


@pytest.mark.parametrize(
    "config, line",
    [
        (
            {"QUEUE_TYPE": "mirrored"},
            "settings: QUEUE_TYPE: Input should be 'classic' or 'quorum', got 'mirrored'",
        ),
        (
            {"OTEL_TRACES_SAMPLER_ARG": 1.5},
            "settings: OTEL_TRACES_SAMPLER_ARG: Input should be less than or equal to 1, got 1.5",
        ),
        (
            {"PUBLISH_RETRY_POLICY": {"max_retries": "many"}},
            "settings: PUBLISH_RETRY_POLICY.max_retries: Input should be a valid integer, got 'many'",
        ),
        (
            {"METRICS_PORT": 70000},
            "settings: METRICS_PORT: Input should be less than or equal to 65535, got 70000",
        ),
    ],
)
def test_every_service_shares_the_common_checks(config, line):
    with pytest.raises(SettingsError, match="^settings: ") as raised:
        validate(config, CommonSettings)
    assert str(raised.value) == line


@pytest.mark.parametrize(
    "value, delays",
    [("5,30,120", (5, 30, 120)), ([1, 2.5], (1, 2.5)), (7, (7,)), ("0.1", (0.1,))],
)
def test_retry_delays_are_read_from_a_list_a_comma_string_or_one_number(value, delays):
    assert delays == validate({"RETRY_DELAYS": value}, RetrySettings).RETRY_DELAYS


@pytest.mark.parametrize("value", ["", "5,-1", [0], "soon"])
def test_retry_delays_must_be_positive_seconds(value):
    with pytest.raises(SettingsError, match="^settings: RETRY_DELAYS"):
        validate({"RETRY_DELAYS": value}, RetrySettings)


def test_values_arrive_typed_as_nameko_run_reads_them_from_the_environment():
    # `${VAR:default}` substitutes a string from the environment; YAML reads "10" as 10 but "off" as False
    settings = validate(
        {"S3_READ_TIMEOUT": "12.5", "S3_MAX_ATTEMPTS": "4", "S3_ENDPOINT_URL": None}, StorageSettings
    )
    assert (settings.S3_READ_TIMEOUT, settings.S3_MAX_ATTEMPTS, settings.S3_ENDPOINT_URL) == (12.5, 4, None)


class Probe:
    """A service whose providers read settings, declaring none of its own."""

    name = "probe"
    storage = Storage()

    @event_handler("other", "thing")
    def handle(self, event):
        pass


class ProbeSettings(CommonSettings, RetrySettings, StorageSettings):
    pass


class DeclaredProbe(Probe):
    name = "declared_probe"
    settings = Settings(ProbeSettings)


def test_a_container_is_validated_once_against_the_services_model():
    container = ServiceContainer(DeclaredProbe, {"AMQP_URI": "memory://", "RETRY_MAX_ATTEMPTS": 2})
    [provider] = [dependency for dependency in container.dependencies if isinstance(dependency, Settings)]

    common = settings_of(container, CommonSettings)
    retries = settings_of(container, RetrySettings)

    assert provider.get_dependency(None) is common is retries
    assert isinstance(common, ProbeSettings) and retries.RETRY_MAX_ATTEMPTS == 2


def test_a_service_model_must_include_what_its_providers_read():
    container = ServiceContainer(DeclaredProbe, {"AMQP_URI": "memory://"})
    with pytest.raises(TypeError, match="ProbeSettings must include WebhookSettings"):
        settings_of(container, WebhookSettings)


def test_a_service_without_a_model_is_validated_against_what_a_provider_asks():
    container = SimpleNamespace(config={"S3_MAX_ATTEMPTS": "3"})
    assert settings_of(container, StorageSettings).S3_MAX_ATTEMPTS == 3


def test_a_declared_model_refuses_the_container_before_it_is_built():
    # SystemExit with the line, as sys.exit(line): `nameko run` prints it alone and exits 1
    config = {"AMQP_URI": "memory://", "RETRY_MAX_ATTEMPTS": "twice"}
    with pytest.raises(SystemExit) as raised:
        ServiceContainer(DeclaredProbe, config)

    assert raised.value.code == "settings: RETRY_MAX_ATTEMPTS: Input should be a valid integer, got 'twice'"


def test_without_a_model_each_provider_validates_what_it_reads(tmp_path):
    config = {"AMQP_URI": "memory://", "LOCAL_STORE_DIR": str(tmp_path), "RETRY_MAX_ATTEMPTS": "twice"}
    with pytest.raises(SettingsError, match="^settings: RETRY_MAX_ATTEMPTS: "):
        ServiceContainer(Probe, config).start()
