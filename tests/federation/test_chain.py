"""Chain placement and fork proofs."""

from __future__ import annotations

import pytest

from rrn.federation.chain import Head, Verdict, check_fork_proof, classify, fork_proof
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ValidationError
from tests.support import Chain, network, raised

TN = network("lima-hr", "nairobi-dl")


def test_first_event_appends_to_an_empty_chain() -> None:
    e = Chain(TN, "lima-hr").next(raised())
    assert classify(e.header, e.id, None) is Verdict.APPEND


def test_next_event_appends_and_wrong_prev_is_a_fork() -> None:
    c = Chain(TN, "lima-hr")
    a = c.next(raised(0))
    b = c.next(raised(1))
    assert classify(b.header, b.id, Head(1, a.id)) is Verdict.APPEND
    assert classify(b.header, b.id, Head(1, b"\x00" * 32)) is Verdict.FORK


def test_event_ahead_of_head_is_a_gap() -> None:
    c = Chain(TN, "lima-hr")
    a = c.next(raised(0))
    c.next(raised(1))
    d = c.next(raised(2))
    assert classify(d.header, d.id, Head(1, a.id)) is Verdict.GAP
    assert classify(d.header, d.id, None) is Verdict.GAP


def test_event_at_or_below_head_needs_the_stored_id() -> None:
    c = Chain(TN, "lima-hr")
    a = c.next(raised(0))
    b = c.next(raised(1))
    head = Head(2, b.id)
    assert classify(a.header, a.id, head) is Verdict.LOOKUP
    assert classify(a.header, a.id, head, stored_id=a.id) is Verdict.DUPLICATE
    assert classify(a.header, a.id, head, stored_id=b"\x01" * 32) is Verdict.FORK


def test_frozen_chain_refuses_what_follows_the_freeze() -> None:
    c = Chain(TN, "lima-hr")
    a = c.next(raised(0))
    b = c.next(raised(1))
    assert classify(b.header, b.id, Head(1, a.id), frozen_after=1) is Verdict.FROZEN
    assert classify(a.header, a.id, None, frozen_after=1) is Verdict.APPEND


def _forked() -> tuple[Event, Event, Event]:
    c1 = Chain(TN, "lima-hr")
    first = c1.next(raised(0))
    honest = c1.next(raised(1))
    c2 = Chain(TN, "lima-hr")
    c2.next(raised(0))
    other = c2.next(raised(2))  # same seq 2, same prev, different content
    return first, honest, other


def test_same_seq_fork_proof_verifies_and_freezes_before_it() -> None:
    _, honest, other = _forked()
    facts = check_fork_proof(fork_proof(honest, other), net=TN.net, resolve=TN.keyring.resolve)
    assert facts == ("lima-hr", 1, 1)


def test_broken_link_fork_proof_freezes_before_the_divergence() -> None:
    c1 = Chain(TN, "lima-hr")
    c1.next(raised(0))
    a = c1.next(raised(1))
    c2 = Chain(TN, "lima-hr")
    c2.next(raised(0))
    c2.next(raised(2))
    b = c2.next(raised(3))  # seq 3, prev is the other seq-2 event
    facts = check_fork_proof(fork_proof(a, b), net=TN.net, resolve=TN.keyring.resolve)
    assert facts.frozen_after == 1


def test_a_pair_without_conflict_is_not_a_proof() -> None:
    c = Chain(TN, "lima-hr")
    a = c.next(raised(0))
    b = c.next(raised(1))
    with pytest.raises(ValidationError):
        check_fork_proof(fork_proof(a, b), net=TN.net, resolve=TN.keyring.resolve)
    with pytest.raises(ValidationError):
        check_fork_proof(fork_proof(a, a), net=TN.net, resolve=TN.keyring.resolve)


def test_a_proof_mixing_in_another_network_is_rejected() -> None:
    _, honest, _ = _forked()
    c = Chain(network("lima-hr", "x-org"), "lima-hr")
    c.next(raised(0))
    stranger = c.next(raised(5))  # same origin and seq, but signed for another network
    with pytest.raises(ValidationError):
        check_fork_proof(fork_proof(honest, stranger), net=TN.net, resolve=TN.keyring.resolve)
