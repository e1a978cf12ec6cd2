"""Escalation policy text and the response-time metrics, without a network."""

from __future__ import annotations

import random

import msgspec
import pytest
from prometheus_client import generate_latest

from rrn.federation.alerts import AlertState, fact, join
from rrn.node.daemon.metrics import Metrics
from rrn.node.membership.policy import describe_policy, parse_policy
from rrn.node.pipeline.responses import observe_responses
from rrn.protocol.alerts import AlertActed, AlertClaimed, AlertEscalated
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ConfigError
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.vocabulary import ActionType, EscalationCause
from tests.support import Chain, network, raised

TN = network("lima-hr", "nairobi-dl", "jakarta-pb")


def test_policy_text_round_trips_and_changes_only_what_it_names() -> None:
    base = NetworkPolicy(immediate_s=600, days_s=7200, weeks_s=43200, max_direct=3)
    changed = parse_policy("immediate=5m,direct=1", base)
    assert changed == NetworkPolicy(immediate_s=300, days_s=7200, weeks_s=43200, max_direct=1)
    assert describe_policy(changed) == "immediate=5m,days=2h,weeks=12h,direct=1"
    assert describe_policy(None) == "immediate=10m,days=2h,weeks=12h,direct=3 (defaults)"
    assert parse_policy(describe_policy(changed)) == changed
    assert parse_policy("days=90s").days_s == 90


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("immediate=0s", "1 s to 7 days"),
        ("weeks=8d", "1 s to 7 days"),
        ("immediate=10", "a duration like"),
        ("direct=40", "0 to 16"),
        ("hourly=1h", "immediate=10m,days=2h"),
    ],
)
def test_bad_policy_text_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_policy(spec)


def _payload(e: Event) -> AlertPayload:
    assert e.payload is not None
    p = decode_payload(e.header.kind, e.payload)
    assert isinstance(p, AlertPayload)
    return p


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.parametrize("seed", range(6))
def test_time_to_claim_and_first_action_are_measured_once_in_any_arrival_order(seed: int) -> None:
    lima, nairobi, jakarta = (Chain(TN, o) for o in ("lima-hr", "nairobi-dl", "jakarta-pb"))
    r = lima.next(raised())
    events = [
        r,
        nairobi.next(AlertEscalated(alert=r.id, level=1, targets=["jakarta-pb"], cause=_DL)),
        jakarta.next(AlertEscalated(alert=r.id, level=1, targets=["jakarta-pb"], cause=_DL)),
        jakarta.next(AlertClaimed(alert=r.id)),
        nairobi.next(AlertClaimed(alert=r.id)),
        jakarta.next(AlertActed(alert=r.id, action=ActionType.LEGAL_AID)),
        nairobi.next(AlertEscalated(alert=r.id, level=2, targets=["lima-hr"], cause=_DL)),
    ]
    random.Random(seed).shuffle(events)
    metrics = Metrics(version="t", nats_server="t")
    state: AlertState | None = None
    for e in events:  # one event per batch: the worst case for double counting
        single = fact(e.header, e.id, _payload(e))
        new = single if state is None else join(state, single)
        observe_responses(metrics.ingest.responses, TN.roster, state, new)
        state = new
    labels = {"urgency": "immediate", "role": "responder", "exercise": "false"}
    assert _sample(metrics, "rrn_alert_time_to_claim_seconds_count", **labels) == 1
    assert _sample(metrics, "rrn_alert_time_to_first_action_seconds_count", **labels) == 1
    assert _sample(metrics, "rrn_alert_escalations_total", level="1", exercise="false") == 1
    assert _sample(metrics, "rrn_alert_escalations_total", level="2", exercise="false") == 1
    claimed = min(e.header.wall_ms for e in events if e.header.kind == "alert.claimed")
    expected = (claimed - r.header.wall_ms) / 1000
    assert _sample(metrics, "rrn_alert_time_to_claim_seconds_sum", **labels) == expected
    text = generate_latest(metrics.registry).decode()
    assert r.id.hex() not in text and "hrd-" not in text, "no alert id or pseudonym in metrics"


_DL = EscalationCause.DEADLINE


def test_a_drill_is_measured_apart_from_real_alerts() -> None:
    lima, nairobi = Chain(TN, "lima-hr"), Chain(TN, "nairobi-dl")
    drill = msgspec.structs.replace(raised(), exercise=True)
    r = lima.next(drill)
    metrics = Metrics(version="t", nats_server="t")
    first = fact(r.header, r.id, _payload(r))
    claim = nairobi.next(AlertClaimed(alert=r.id))
    observe_responses(
        metrics.ingest.responses,
        TN.roster,
        first,
        join(first, fact(claim.header, claim.id, _payload(claim))),
    )
    labels = {"urgency": "immediate", "role": "responder"}
    assert _sample(metrics, "rrn_alert_time_to_claim_seconds_count", **labels, exercise="true") == 1
    assert (
        _sample(metrics, "rrn_alert_time_to_claim_seconds_count", **labels, exercise="false") == 0
    )
