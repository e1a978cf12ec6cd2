"""The unit tests of deploy/prometheus-rules.yml, as promtool runs them.

Every alert has a case that fires (after its `for`, with exactly these labels and
its annotations filled in) and one that stays silent (the nearest situation that
must not page anyone). `python -m tests.deploy.rule_cases` rewrites
deploy/prometheus-rules.test.yml from this table; tests/deploy/test_prometheus.py
checks the file is current and runs `promtool test rules` on it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus-rules.yml"
TESTS = DEPLOY / "prometheus-rules.test.yml"
NODE = 'job="rrn", instance="127.0.0.1:9464", org="lima-hr"'
NODE_LABELS = {"job": "rrn", "instance": "127.0.0.1:9464", "org": "lima-hr"}


@dataclass
class Case:
    alert: str
    #: series (name{extra labels}) -> values, when it fires
    fires: dict[str, str]
    at: str
    #: the alert's labels besides alertname and severity
    labels: dict[str, str]
    #: series when it must stay silent, evaluated at the same time
    silent: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)


def _s(name: str, extra: str = "") -> str:
    return f"{name}{{{NODE}{', ' + extra if extra else ''}}}"


N = NODE_LABELS
NAIROBI = 'peer="nairobi-dl"'
CASES = [
    Case("RrnNodeDown", {'up{job="rrn", instance="127.0.0.1:9464", org="lima-hr"}': "0x20"},
         "2m", N, {'up{job="rrn", instance="127.0.0.1:9464", org="lima-hr"}': "0 0 1x20"}),
    Case("RrnNatsDisconnected",
         {_s("rrn_nats_connected"): "0x20", _s("rrn_nats_server_up"): "1x20"}, "2m", N,
         {_s("rrn_nats_connected"): "1x20", _s("rrn_nats_server_up"): "1x20"}),
    Case("RrnOwnEventsBlocked", {_s("rrn_own_appends_blocked"): "1x20"}, "3m", N,
         {_s("rrn_own_appends_blocked"): "0x20"}),
    Case("RrnDiskLow", {_s("rrn_disk_free_bytes"): "5e8x60"}, "11m", N,
         {_s("rrn_disk_free_bytes"): "5e9x60"}),
    Case("RrnDiskFull", {_s("rrn_disk_free_bytes"): "1e8x20"}, "3m", N,
         {_s("rrn_disk_free_bytes"): "5e8x20"}),
    Case("RrnForkDetected", {_s("rrn_ingest_fork_proofs_total"): "0 0 1x20"}, "2m", N,
         {_s("rrn_ingest_fork_proofs_total"): "1x20"}),
    Case("RrnSignatureWorkerLost", {_s("rrn_signature_workers_lost_total"): "0 0 1x20"}, "2m",
         N, {_s("rrn_signature_workers_lost_total"): "1x300"}),
    Case("RrnRejectionsRising",
         {_s("rrn_ingest_rejected_total", 'reason="bad_signature"'): "0+100x100"}, "21m",
         {**N, "reason": "bad_signature"},
         {_s("rrn_ingest_rejected_total", 'reason="bad_signature"'): "0+1x100"}),
    Case("RrnEventsHeldBehindGap", {_s("rrn_ingest_held_events"): "5x200"}, "35m", N,
         {_s("rrn_ingest_held_events"): "0x200"}),
    Case("RrnSlowIngest",
         {_s("rrn_ingest_latency_seconds_bucket", 'le="1"'): "0x100",
          _s("rrn_ingest_latency_seconds_bucket", 'le="2.5"'): "0x100",
          _s("rrn_ingest_latency_seconds_bucket", 'le="+Inf"'): "0+10x100"}, "26m", N,
         {_s("rrn_ingest_latency_seconds_bucket", 'le="1"'): "0+10x100",
          _s("rrn_ingest_latency_seconds_bucket", 'le="2.5"'): "0+10x100",
          _s("rrn_ingest_latency_seconds_bucket", 'le="+Inf"'): "0+10x100"}),
    Case("RrnSlowConsumers", {_s("rrn_nats_server_slow_consumers"): "0 0 3x20"}, "2m", N,
         {_s("rrn_nats_server_slow_consumers"): "3x20"}),
    Case("RrnMemberDownOnDuty",
         {_s("rrn_peer_up", f'{NAIROBI}, link="accepts"'): "0x20",
          _s("rrn_peer_on_duty", NAIROBI): "1x20"}, "2m",
         {**N, "peer": "nairobi-dl", "link": "accepts"},
         {_s("rrn_peer_up", f'{NAIROBI}, link="accepts"'): "0x20",
          _s("rrn_peer_on_duty", NAIROBI): "0x20"}),
    Case("RrnMemberDown", {_s("rrn_peer_up", f'{NAIROBI}, link="dials"'): "0x60"}, "11m",
         {**N, "peer": "nairobi-dl", "link": "dials"},
         {_s("rrn_peer_up", f'{NAIROBI}, link="relayed"'): "0x60"}),
    Case("RrnIsolated", {_s("rrn_peers_connected"): "0x20", _s("rrn_roster_members"): "3x20"},
         "3m", N, {_s("rrn_peers_connected"): "0x20", _s("rrn_roster_members"): "1x20"}),
    Case("RrnFallingBehind",
         {_s("rrn_sync_behind_events", 'origin="nairobi-dl"'): "5x100"}, "16m", N,
         {_s("rrn_sync_behind_events", 'origin="nairobi-dl"'): "0x100"}),
    Case("RrnClockSkew", {_s("rrn_peer_clock_skew_seconds", NAIROBI): "300x200"}, "31m",
         {**N, "peer": "nairobi-dl"},
         {_s("rrn_peer_clock_skew_seconds", NAIROBI): "60x200"}),
    Case("RrnPeerMisbehaving",
         {_s("rrn_peer_rejected_total", f'{NAIROBI}, reason="bad_signature"'): "0+10x100"},
         "21m", {**N, "peer": "nairobi-dl", "reason": "bad_signature"},
         {_s("rrn_peer_rejected_total", f'{NAIROBI}, reason="rate_limited"'): "0+10x100"}),
    Case("RrnRosterDisagreement",
         {_s("rrn_peer_roster_version", NAIROBI): "2x200", _s("rrn_roster_version"): "3x200"},
         "31m", {**N, "peer": "nairobi-dl"},
         {_s("rrn_peer_roster_version", NAIROBI): "3x200", _s("rrn_roster_version"): "3x200"}),
    Case("RrnUnauthorisedAlertChange",
         {_s("rrn_alert_transitions_refused_total",
             'signer="acme-co", kind="claimed", reason="outside_audience"'): "0 0 1x20"},
         "2m", {**N, "signer": "acme-co", "kind": "claimed", "reason": "outside_audience"},
         {_s("rrn_alert_transitions_refused_total",
             'signer="acme-co", kind="claimed", reason="outside_audience"'): "1x20"}),
    Case("RrnMemberOverQuota",
         {_s("rrn_ingest_rejected_total", 'reason="quota_exceeded"'): "0 0 1x20"}, "2m",
         {**N, "reason": "quota_exceeded"},
         {_s("rrn_ingest_rejected_total", 'reason="gap_overflow"'): "0 0 1x20"}),
    Case("RrnMemberRelayLimited",
         {_s("rrn_origin_limited_total", 'origin="acme-co"'): "0+50x100"}, "21m",
         {**N, "origin": "acme-co"},
         {_s("rrn_origin_limited_total", 'origin="acme-co"'): "50x100"}),
    Case("RrnCoverageGapSoon",
         {_s("rrn_coverage_gap_seconds", 'horizon="6h", kind="region", key="PE"'): "3600x40"},
         "6m", {**N, "kind": "region", "key": "PE"},
         {_s("rrn_coverage_gap_seconds", 'horizon="24h", kind="region", key="PE"'): "3600x40"}),
    Case("RrnCoverageGapTomorrow",
         {_s("rrn_coverage_gap_seconds", 'horizon="24h", kind="language", key="sw"'): "60x60"},
         "11m", {**N, "kind": "language", "key": "sw"},
         {_s("rrn_coverage_gap_seconds", 'horizon="24h", kind="language", key="sw"'): "0x60"}),
    Case("RrnAlertUnclaimed",
         {_s("rrn_alerts_unclaimed_past_deadline", 'urgency="immediate"'): "1x40"}, "6m",
         {**N, "urgency": "immediate"},
         {_s("rrn_alerts_unclaimed_past_deadline", 'urgency="days"'): "1x40"}),
    Case("RrnAlertUnclaimedSlow",
         {_s("rrn_alerts_unclaimed_past_deadline", 'urgency="days"'): "1x200"}, "31m",
         {**N, "urgency": "days"},
         {_s("rrn_alerts_unclaimed_past_deadline", 'urgency="immediate"'): "1x200"}),
    Case("RrnNotifyFailing",
         {_s("rrn_notify_total", 'channel="command", outcome="failed"'): "0 0 1x20"}, "2m",
         {**N, "channel": "command", "outcome": "failed"},
         {_s("rrn_notify_total", 'channel="command", outcome="ok"'): "0 0 1x20"}),
]  # fmt: skip


def rules() -> dict[str, dict[str, Any]]:
    """Each alert of the rules file by name."""
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def _fill(text: str, labels: dict[str, str]) -> str:
    """The rules' templates use `{{ $labels.x }}` only; fill them as Prometheus would."""
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m[1], ""), text)


def _test(case: Case, series: dict[str, str], expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": "15s",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": case.at, "alertname": case.alert, "exp_alerts": expected}
        ],
    }


def build() -> dict[str, Any]:
    found = rules()
    tests = []
    for case in CASES:
        rule = found[case.alert]
        labels = dict(case.labels)
        kept = re.search(r"\b(?:sum|max) by \(([^)]*)\)", rule["expr"])
        if kept:  # an aggregation keeps only the labels it groups by
            names = {n.strip() for n in kept[1].split(",")}
            labels = {k: v for k, v in labels.items() if k in names}
        labels["severity"] = rule["labels"]["severity"]
        annotations = {k: _fill(v, labels) for k, v in rule.get("annotations", {}).items()}
        tests.append(
            _test(case, case.fires, [{"exp_labels": labels, "exp_annotations": annotations}])
        )
        tests.append(_test(case, case.silent, []))
    return {"rule_files": [RULES.name], "evaluation_interval": "15s", "tests": tests}


def render() -> str:
    head = (
        "# Unit tests of prometheus-rules.yml: each alert fires when it should and stays\n"
        "# silent when it should not. Generated by `python -m tests.deploy.rule_cases`;\n"
        "# run with `promtool test rules prometheus-rules.test.yml`.\n"
    )
    return head + yaml.safe_dump(build(), sort_keys=False, width=100)


if __name__ == "__main__":
    if "--write" in sys.argv:
        TESTS.write_text(render())
        print(f"wrote {TESTS}")
    else:
        sys.stdout.write(render())
