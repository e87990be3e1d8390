"""Typed settings: one pydantic model per service, read from nameko's config, validated at start.

`config.yaml` stays where settings come from: `${VAR:default}` names the environment variable and
its default, `nameko run` substitutes them. This module only says what each value must be (its
type and range) and turns a wrong one into one line naming the key, before anything starts:

    settings: WEBHOOK_RETRIES: Input should be a valid integer, got 'abc'

Each dependency provider reads a small model (`StorageSettings`, `WebhookSettings`...); a
service's model is composed of those of its providers plus its own settings, and declared on the
class as a dependency, which validates the config when the container is built and injects the
typed settings into workers:

    class TimeConsumingSettings(CommonSettings, DatabaseSettings, StorageSettings, ...):
        JOB_LEASE_SECONDS: PositiveFloat = 300

    class TimeConsumingService:
        settings = Settings(TimeConsumingSettings)

Providers ask `settings_of(self.container, StorageSettings)` in their `setup` and read typed
values, never coercing: the service's validated model (which must include what they ask for). A
container whose service declares no model (a probe in a test) is validated, at `setup`, against
the model the provider asks for.

The fields keep a default for configs that do not carry the key: a container built only to read its
queue names (common.topology), a probe's config. Each equals the default config.yaml gives it, for
every service (tests/deploy/test_settings.py): config.yaml stays the one place a default is chosen.
"""

from typing import Literal

from nameko.extensions import DependencyProvider
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
)


class SettingsError(ValueError):
    """Invalid settings: `problems` maps each key (dotted for a nested one) to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("settings: " + "; ".join(f"{key}: {problem}" for key, problem in problems.items()))


class SettingsModel(BaseModel):
    """Reads a nameko config dict: other keys (nameko's own, LOGGING...) are left to their readers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class PublishRetryPolicy(SettingsModel):
    """kombu's `Connection.ensure` keywords for publishing while the broker is unreachable."""

    max_retries: NonNegativeInt = 60
    interval_start: NonNegativeFloat = 1
    interval_step: NonNegativeFloat = 1
    interval_max: NonNegativeFloat = 5


class QueueSettings(SettingsModel):
    QUEUE_TYPE: Literal["classic", "quorum"] = "classic"


class DeadLetterSettings(QueueSettings):
    DEAD_LETTER_QUEUE: str = Field("dead-letters", min_length=1)


class PublishSettings(SettingsModel):
    PUBLISH_RETRY_POLICY: PublishRetryPolicy = PublishRetryPolicy()


class CommonSettings(QueueSettings, PublishSettings):
    """What every service's providers read (metrics, tracing, shutdown, publishing, queues)."""

    max_workers: PositiveInt = 10  # nameko's own key, read when the container is built
    HEARTBEAT: PositiveInt = 60  # nameko's own key: AMQP heartbeat of the consuming connection (s)
    # null (an empty METRICS_PORT) = no endpoint; 0 = any free port
    METRICS_PORT: int | None = Field(0, ge=0, le=65535)
    METRICS_ADDRESS: str = "0.0.0.0"
    # null (empty) = tracing off
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = None
    OTEL_TRACES_SAMPLER_ARG: float = Field(1.0, ge=0, le=1)
    SHUTDOWN_TIMEOUT: PositiveFloat = 20


class DatabaseSettings(SettingsModel):
    # Each service's model gives the default of its own config.yaml (its own SQLite file).
    DATABASE_URL: str = Field(min_length=1)
    DATABASE_AUTO_MIGRATE: bool = True


class WebSettings(SettingsModel):
    HTTP_MAX_BODY_BYTES: PositiveInt = 1048576


class StorageSettings(SettingsModel):
    # null (empty) = files under LOCAL_STORE_DIR
    S3_ENDPOINT_URL: str | None = None
    S3_BUCKET: str = Field("payloads", min_length=1)
    S3_REGION: str = Field("us-east-1", min_length=1)
    # null (empty) = boto3's own chain (AWS_ACCESS_KEY_ID..., ~/.aws, instance roles)
    S3_ACCESS_KEY_ID: str | None = None
    S3_SECRET_ACCESS_KEY: str | None = None
    S3_CONNECT_TIMEOUT: PositiveFloat = 5
    S3_READ_TIMEOUT: PositiveFloat = 30
    S3_MAX_ATTEMPTS: PositiveInt = 3
    LOCAL_STORE_DIR: str = Field("objects", min_length=1)


class WebhookSettings(SettingsModel):
    # null (empty) = notifications logged only
    WEBHOOK_URL: str | None = None
    WEBHOOK_CONNECT_TIMEOUT: PositiveFloat = 5
    WEBHOOK_READ_TIMEOUT: PositiveFloat = 10
    WEBHOOK_RETRIES: NonNegativeInt = 3
    WEBHOOK_BACKOFF: NonNegativeFloat = 0.5


class RetrySettings(DeadLetterSettings, PublishSettings):
    """An event handler's retries (common.retries): the delays, the attempts, where it parks."""

    RETRY_DELAYS: tuple[PositiveFloat, ...] = Field((5, 30, 120, 600), min_length=1)
    RETRY_MAX_ATTEMPTS: PositiveInt = 5

    @field_validator("RETRY_DELAYS", mode="before")
    @classmethod
    def comma_separated(cls, value):
        """A YAML list, one number, or the environment's "5,30,120,600"."""
        if isinstance(value, int | float):
            return (value,)
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


def describe(error: dict) -> str:
    """pydantic's message for one error, short, with the value it got. (No secret is echoed: the
    fields that hold one, DATABASE_URL and the S3 keys, refuse nothing but an empty string.)"""
    message = error["msg"].removeprefix("Value error, ").split(", unable to")[0]
    if error["type"] == "missing":
        return message
    return f"{message}, got {error['input']!r}"


def validate(config: dict, model: type[SettingsModel]) -> SettingsModel:
    """`config` (a nameko config dict) as `model`, or `SettingsError` naming every wrong key."""
    try:
        return model.model_validate(config)
    except ValidationError as error:
        problems = {".".join(map(str, problem["loc"])): describe(problem) for problem in error.errors()}
        raise SettingsError(problems) from None


class Settings(DependencyProvider):
    """Declares the service's settings model; injects the validated settings into each worker.

    Validates when the container is built (`bind`), which `nameko run` does in its main greenlet
    before starting anything: an invalid value ends the process with its line alone and status 1,
    as `sys.exit(line)` does. (Later, in `setup`, nameko runs extensions in greenthreads, and
    eventlet's hub prints the traceback of every one that raises.)
    """

    def __init__(self, model: type[SettingsModel]):
        self.model = model

    def bind(self, container, attr_name):
        instance = super().bind(container, attr_name)
        try:
            instance.settings = settings_of(container, self.model)
        except SettingsError as error:
            raise SystemExit(str(error)) from None
        return instance

    def get_dependency(self, worker_ctx):
        return self.settings


def service_model(container) -> type[SettingsModel] | None:
    for dependency in vars(container).get("dependencies", ()):
        if isinstance(dependency, Settings):
            return dependency.model
    return None


def settings_of(container, needed: type[SettingsModel]):
    """The container's validated settings, as the service's model (which must include `needed`)."""
    model = service_model(container) or needed
    if not issubclass(model, needed):
        raise TypeError(
            f"{model.__name__} must include {needed.__name__}: a provider of the service reads it"
        )
    cache = vars(container).setdefault("_validated_settings", {})
    if model not in cache:
        cache[model] = validate(container.config, model)
    return cache[model]
