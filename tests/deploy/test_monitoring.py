"""The monitoring kit in deploy/, checked by the real tools and against a live node:
the alert rules pass `promtool check rules` and their unit tests (each alert fires when
it should and stays silent when it should not), the Prometheus and Alertmanager
configs pass their checkers, and every metric a rule or the dashboard reads is one a
running node exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.rule_cases import CASES, DEPLOY, RULES, TESTS, render, rules
from tests.netkit import TestNetwork


def tool(name: str) -> str:
    """The path of a tool the check needs: a missing tool fails the test, never skips it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run `make tools` (as root it installs Debian's packages)"
        )
    return found


def _run(*args: str) -> str:
    done = subprocess.run(
        args, check=False, cwd=DEPLOY, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_pass_promtool() -> None:
    assert "SUCCESS" in _run(tool("promtool"), "check", "rules", RULES.name)


def test_every_alert_has_a_case_that_fires_and_one_that_stays_silent() -> None:
    assert sorted(rules()) == sorted(c.alert for c in CASES)
    for rule in rules().values():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert "{{ $labels.org }}" in rule["annotations"]["summary"], "every alert names its member"


def test_the_rule_unit_tests_are_current_and_pass() -> None:
    assert TESTS.read_text() == render(), "run: python -m tests.deploy.rule_cases --write"
    assert "SUCCESS" in _run(tool("promtool"), "test", "rules", TESTS.name)


def test_prometheus_and_alertmanager_configs_pass_their_tools() -> None:
    _run(tool("promtool"), "check", "config", "prometheus.yml")
    _run(tool("amtool"), "check-config", "alertmanager.yml")


_METRIC = re.compile(r"\b((?:rrn|process)_[a-z0-9_]+|up)\b")


def _read_metrics() -> set[str]:
    """Every metric name the rules and the dashboard read."""
    names = {n for r in rules().values() for n in _METRIC.findall(r["expr"])}
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names |= set(_METRIC.findall(target["expr"]))
    return names - {"up"}  # Prometheus's own, one per scrape target


def _exported(text: str) -> set[str]:
    """The sample names a /metrics page can hold, from its TYPE lines (a labelled family
    with no child yet still declares its type)."""
    suffixes = {
        "counter": ("", "_total"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "info": ("_info",),
        "summary": ("_sum", "_count", ""),
    }
    found = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            found |= {name + s for s in suffixes.get(kind, ("",))}
    return found


@pytest.mark.integration
def test_every_metric_the_rules_and_dashboard_read_is_exported(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        net.wait(lambda: net.metric(1, "rrn_peer_up", peer=net.org(2)) == 1, "a peer heard")
        info = json.loads((net.home(1) / "run" / "daemon.json").read_text())
        text = urllib.request.urlopen(info["metrics_url"], timeout=5).read().decode()
        base = info["metrics_url"].removesuffix("/metrics")
        assert _get(base + "/healthz") == (200, "ok\n")
        assert _get(base + "/readyz") == (200, "ready\n")
        net.devnet.stop(2)
        net.wait(lambda: _get(base + "/readyz")[0] == 503, "lima to notice it hears nobody")
        assert _get(base + "/readyz")[1] == "no other member's heartbeats arrive\n"
        assert _get(base + "/healthz")[0] == 200
        net.devnet.stop(1)
        net.devnet.start(1)  # nairobi-dl still down: its series is there from the start
        # Read at once, before any heartbeat interval: present, and 0.
        assert re.search(
            rf'rrn_peer_up{{link="dials",peer="{net.org(2)}"}} 0\.0', _get(_metrics_url(net))[1]
        )
    finally:
        net.close()
    missing = _read_metrics() - _exported(text)
    assert not missing, f"read by deploy/ but not exported: {sorted(missing)}"
    assert "_created" not in text


def _metrics_url(net: TestNetwork) -> str:
    url: str = json.loads((net.home(1) / "run" / "daemon.json").read_text())["metrics_url"]
    return url


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
