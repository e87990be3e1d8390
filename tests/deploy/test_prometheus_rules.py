"""deploy/prometheus/: Prometheus's own checker on the configuration and the alert rules, and the rules'
unit tests (`promtool test rules`), without a Prometheus server.

promtool comes from PATH, else from Debian's prometheus package unpacked into build/prometheus/ by
tools/test-services (which `make test` runs first).
"""

import shutil
import subprocess

import pytest
import yaml

from common.settings import DeadLetterSettings
from testkit import compose
from testkit.processes import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
UNPACKED = ROOT / "build" / "prometheus" / "usr" / "bin" / "promtool"


def promtool(*args) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool") or (UNPACKED if UNPACKED.exists() else None)
    if binary is None:
        pytest.fail("no promtool on PATH nor in build/prometheus: run tools/test-services", pytrace=False)
    return subprocess.run([binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def alerts() -> list[str]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_configuration_and_its_rule_file():
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_promtool_accepts_the_alert_rules():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout


def test_the_rules_unit_tests_pass():
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_rule_that_no_longer_fires_as_expected_fails_its_unit_test(tmp_path):
    """The unit tests can fail: the outbox alert's threshold raised from 5 to 10 minutes."""
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert rules.count("message_outbox_oldest_unsent_age_seconds) > 300") == 1
    (tmp_path / "alerts.yml").write_text(
        rules.replace("unsent_age_seconds) > 300", "unsent_age_seconds) > 600")
    )
    (tmp_path / "alerts_test.yml").write_text((PROMETHEUS / "alerts_test.yml").read_text())

    tested = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))

    assert tested.returncode == 1
    assert "alertname: OutboxBacklogOld, time: 7m" in tested.stderr


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not():
    cases = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    fires = {check["alertname"] for check in checks if check["exp_alerts"]}
    stays_quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert set(alerts()) == fires == stays_quiet
    assert {"DeadLetterParked", "OutboxBacklogOld", "QueueWithoutConsumer", "ErrorRatioHigh"} <= set(alerts())


def test_prometheus_scrapes_every_application_service_of_the_compose_file_on_its_metrics_port():
    scrape = {
        job["job_name"]: job
        for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    }
    [discovery] = scrape["nameko"]["dns_sd_configs"]
    project = compose.load(ROOT / "docker-compose.yml", environ={})

    assert sorted(discovery["names"]) == sorted(service.name for service in project.app_services)
    assert {service.environment["METRICS_PORT"] for service in project.app_services} == {
        str(discovery["port"])
    }
    assert scrape["rabbitmq"]["static_configs"] == [{"targets": ["rabbitmq:15692"]}]


def test_the_dead_letter_alert_watches_the_default_dead_letter_queue():
    [rule] = [
        rule
        for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if rule["alert"] == "DeadLetterParked"
    ]
    assert f'queue="{DeadLetterSettings().DEAD_LETTER_QUEUE}"' in rule["expr"]
