"""Which walks of the integrators' stream a tombstone costs: one per group of events
stored within two minutes of each other, so naming a member's first and latest event
costs two short walks, not one over everything between them."""

from __future__ import annotations

from rrn.node.integrations.erasure import _windows

DAY_MS = 86_400_000


def test_events_stored_far_apart_are_looked_for_apart() -> None:
    stored = {"first": 0, "next": 30_000, "latest": 365 * DAY_MS, "after": 365 * DAY_MS + 1}
    assert _windows(stored) == [{"first": 0, "next": 30_000},
                                {"latest": 365 * DAY_MS, "after": 365 * DAY_MS + 1}]  # fmt: skip
