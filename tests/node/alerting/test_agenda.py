"""The escalator's agenda: which open alerts to look at, and when (pure, no clock)."""

from __future__ import annotations

import pytest

from rrn.federation.alert_view import AlertView
from rrn.federation.alerts import AlertState, AlertStatus
from rrn.node.alerting import agenda as agenda_module
from rrn.node.alerting.agenda import Agenda
from rrn.protocol.vocabulary import Severity, Urgency


def _alert(n: int) -> bytes:
    return n.to_bytes(2, "big") * 16


def _change(n: int, status: AlertStatus = AlertStatus.OPEN) -> tuple[AlertState, AlertView]:
    state = AlertState(alert=_alert(n))
    v = AlertView(
        alert=_alert(n),
        origin="lima-hr",
        status=status,
        country="PE",
        subdivision=None,
        incident_types=(),
        severity=Severity.SEVERE,
        urgency=Urgency.IMMEDIATE,
        asks=(),
        languages=(),
        pseudonym="hrd-abcdefg2",
        exercise=False,
        raised_ms=0,
        updated_ms=0,
        claimants=(),
        ended_by=None,
        end_code=None,
    )
    return state, v


def test_an_alert_comes_due_once_at_its_moment_and_not_after_it_changed() -> None:
    a = Agenda()
    a.reset([_alert(1), _alert(2)])
    assert sorted(a.take_sweep(10)) == [_alert(1), _alert(2)]
    a.at(_alert(1), 100)
    a.at(_alert(2), 100)
    a.at(_alert(2), 200)  # moved: the earlier moment no longer counts
    assert a.next_ms() == 100
    assert a.take_due(99) == []
    assert a.take_due(150) == [_alert(1)]
    assert a.take_due(150) == [], "once"
    a.changed(*_change(2))  # a change is looked at now, with its state
    assert a.take_due(300) == []
    assert [s.alert for s, _ in a.take_changed()] == [_alert(2)]


def test_an_alert_that_ends_is_forgotten_and_reported_once() -> None:
    a = Agenda()
    a.reset([_alert(1)])
    a.at(_alert(1), 100)
    a.changed(*_change(1, AlertStatus.RESOLVED))
    assert a.take_due(1_000) == [] and a.next_ms() is None
    assert a.take_ended() == {_alert(1)}
    assert a.take_ended() == set()
    assert a.pending(_alert(1)), "a state read for it is not looked at"


def test_beyond_what_is_held_a_changed_alert_is_read_again_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agenda_module, "_HELD", 2)
    a = Agenda()
    for n in range(5):
        a.changed(*_change(n))
    held = [s.alert for s, _ in a.take_changed()]
    assert len(held) == 2
    assert sorted(held + a.take_due(0)) == [_alert(n) for n in range(5)]


def test_stale_moments_do_not_pile_up() -> None:
    a = Agenda()
    a.reset([_alert(1)])
    for t in range(10_000):
        a.at(_alert(1), t)
    assert len(a._queue) < 100
    assert a.take_due(20_000) == [_alert(1)]
