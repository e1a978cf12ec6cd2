"""Supporters' offer-to-answer times (node/pipeline/asktimes.py): measured from the
offer of each member's turn, once, whatever order the events arrive in, by role,
naming no member."""

from __future__ import annotations

import random

import msgspec
import pytest
from prometheus_client import generate_latest

from rrn.federation.alerts import AlertState, fact, join
from rrn.federation.authority import Authority
from rrn.federation.turns import ANSWER_WINDOW_FACTOR, turns_of
from rrn.node.daemon.metrics import Metrics
from rrn.node.pipeline.responses import observe_responses
from rrn.protocol.alerts import AlertActed, AlertPledged, Ask
from rrn.protocol.encoding import encode
from rrn.protocol.kinds import AlertPayload, decode_payload
from rrn.protocol.roster import Role
from rrn.protocol.vocabulary import ActionType, ActResult, SupporterRole
from tests.support import Chain, network, raised

ROLES = {"lima-hr": [Role.RESPONDER], "acme-co": [Role.COMPANY], "beta-co": [Role.COMPANY]}
TN = network(*ROLES, roles=ROLES)
ENGAGE = ActionType.BUSINESS_PARTNER_ENGAGEMENT
T0 = 1_767_300_000_000


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.parametrize("seed", range(4))
def test_each_answer_is_measured_once_from_its_offer(seed: int) -> None:
    body = msgspec.structs.replace(raised(), asks=[Ask(action=ENGAGE, to=SupporterRole.COMPANY)])
    r = Chain(TN, "lima-hr").raw("alert.raised", encode(body), wall_ms=T0)
    window = ANSWER_WINDOW_FACTOR * Authority.of(TN.roster).step_s[body.urgency] * 1000
    found = turns_of(fact(r.header, r.id, body), Authority.of(TN.roster))
    assert found is not None
    first, second = found.asks[0].order
    c = {o: Chain(TN, o) for o in (first, second)}
    said = [
        c[first].raw(
            "alert.acted",
            encode(AlertActed(alert=r.id, action=ENGAGE, result=ActResult.DECLINED)),
            wall_ms=T0 + 20_000,
        ),  # its turn passes at once: the second is offered at T0 + 20 s
        c[second].raw(
            "alert.pledged", encode(AlertPledged(alert=r.id, action=ENGAGE)), wall_ms=T0 + 50_000
        ),
        c[second].raw(
            "alert.acted", encode(AlertActed(alert=r.id, action=ENGAGE)), wall_ms=T0 + 80_000
        ),
    ]
    events = [r, *said]
    random.Random(seed).shuffle(events)
    metrics = Metrics(version="t", nats_server="t")
    state: AlertState | None = None
    for e in events:  # one event per batch: the worst case for double counting
        p = decode_payload(e.header.kind, e.payload or b"")
        assert isinstance(p, AlertPayload)
        new = fact(e.header, e.id, p) if state is None else join(state, fact(e.header, e.id, p))
        observe_responses(metrics.ingest.responses, TN.roster, state, new)
        state = new
    labels = {"role": "company", "exercise": "false"}
    count = "rrn_ask_offer_to_%s_seconds_count"
    total = "rrn_ask_offer_to_%s_seconds_sum"
    assert _sample(metrics, count % "response", **labels) == 2, "the decline and the pledge"
    assert _sample(metrics, total % "response", **labels) == 20 + 30
    assert _sample(metrics, count % "pledge", **labels) == 1
    assert _sample(metrics, total % "pledge", **labels) == 30
    assert _sample(metrics, total % "action", **labels) == 60
    assert window > 80_000, "all within the first window: nothing else was offered"
    text = generate_latest(metrics.registry).decode()
    assert "acme-co" not in text and "beta-co" not in text, "no member named in metrics"
