"""Which range of a chain pull sync asks for next (node/peering/ranges.py): never one
in flight or just answered, never past the next such range, and a range lost below
an answered one is asked for again."""

from __future__ import annotations

from rrn.node.peering.ranges import Ranges

KEY = ("nairobi-dl", 1)


def test_the_next_range_skips_what_is_in_flight_or_answered_and_stops_before_the_next() -> None:
    r = Ranges(keep_s=10, page=100)
    assert r.next_ask(KEY, held=0, upto=350, now=0) == (1, 100)
    r.asked(KEY, 1, 100, b"a")
    assert r.next_ask(KEY, held=0, upto=350, now=0) == (101, 100)
    r.asked(KEY, 101, 100, b"b")
    r.closed(KEY, 1, b"a")
    r.answered(KEY, 1, 60, now=0)  # cut short by size: 61..100 are missing
    assert r.next_ask(KEY, held=0, upto=350, now=0) == (61, 40), "the rest, up to the next"
    assert r.have(KEY, held=0, now=0) == 60
    r.asked(KEY, 61, 40, b"c")
    assert r.next_ask(KEY, held=0, upto=350, now=0) == (201, 100)
    assert r.next_ask(KEY, held=0, upto=150, now=0) is None, "nothing past what the peer has"
    assert r.in_flight(KEY) == 2


def test_a_range_lost_below_one_answered_is_not_hidden() -> None:
    r = Ranges(keep_s=10, page=100)
    r.asked(KEY, 1, 100, b"a")
    r.asked(KEY, 101, 100, b"b")
    r.closed(KEY, 101, b"b")
    r.answered(KEY, 101, 200, now=0)
    assert r.have(KEY, held=0, now=0) == 0, "200 answered, 1..100 not: nothing more held"
    r.closed(KEY, 1, b"a")  # it timed out
    assert r.next_ask(KEY, held=0, upto=300, now=1) == (1, 100)
    r.answered(KEY, 1, 100, now=2)
    assert r.have(KEY, held=0, now=2) == 200


def test_an_answer_counts_for_a_while_then_only_what_is_held() -> None:
    r = Ranges(keep_s=10, page=100)
    r.asked(KEY, 1, 100, b"a")
    r.closed(KEY, 1, b"a")
    r.answered(KEY, 1, 100, now=0)
    assert r.have(KEY, held=0, now=10) == 100
    assert r.have(KEY, held=30, now=11) == 30, "stored only so far: the rest is asked again"
    assert r.next_ask(KEY, held=30, upto=100, now=11) == (31, 100)


def test_a_stale_answer_or_timeout_does_not_close_a_newer_request() -> None:
    r = Ranges(keep_s=10, page=100)
    r.asked(KEY, 1, 100, b"old")
    r.asked(KEY, 1, 100, b"new")  # asked again (of another peer, after a timeout)
    r.closed(KEY, 1, b"old")
    assert r.in_flight(KEY) == 1


def test_a_page_proved_false_is_no_longer_held_and_its_pages_are_checked_in_order() -> None:
    r = Ranges(keep_s=10, page=100)
    r.asked(KEY, 1, 3, b"a")
    r.closed(KEY, 1, b"a")
    token = r.answered(KEY, 1, 3, now=0, peer="jakarta-pb")
    assert r.have(KEY, held=0, now=0) == 3
    checks = [r.checked(token) for _ in range(3)]
    assert [seq for _, seq in filter(None, checks)] == [1, 2, 3], "each envelope's seq, in order"
    assert r.checked(token) is None, "done with once its last envelope is checked"
    page = checks[0][0] if checks[0] else None
    assert page is not None and page.peer == "jakarta-pb"
    r.forget(page)
    assert r.have(KEY, held=0, now=0) == 0
    assert r.next_ask(KEY, held=0, upto=3, now=0) == (1, 100)
    stale = r.answered(KEY, 1, 3, now=0)
    r.expire(now=301, older_s=300)
    assert r.checked(stale) is None, "a page the pipeline never finished is not kept for ever"
