"""Roster rules: genesis by all founders, N+1 by a threshold of distinct orgs."""

from __future__ import annotations

import msgspec
import pytest

from rrn.federation.escalation import Policy
from rrn.federation.keyring import Keyring, Rotation
from rrn.federation.roster import (
    default_threshold,
    make_genesis,
    next_roster,
    tolerated_faults,
    verify_genesis,
    verify_next,
)
from rrn.protocol.errors import (
    DecodeError,
    FederationError,
    Reason,
    SignatureError,
    ValidationError,
)
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.roster import (
    Cutoff,
    Roster,
    RosterCert,
    SignKey,
    decode_roster,
    encode_roster,
    member_from_card,
    open_card,
    roster_id,
    sign_card,
    sign_roster,
)
from rrn.protocol.vocabulary import Urgency
from tests.support import Net, card, key, network, pub

FIVE = ("a-org", "b-org", "c-org", "d-org", "e-org")


def _next(tn: Net, **changes: object) -> bytes:
    r = tn.roster
    new = msgspec.structs.replace(
        r, version=r.version + 1, prev=roster_id(tn.roster_bytes), **changes
    )
    return encode_roster(new)


def _approve(tn: Net, data: bytes, *orgs: str) -> RosterCert:
    return RosterCert(roster=data, approvals=[sign_roster(tn.keys[o], o, 1, data) for o in orgs])


def test_default_threshold_tolerates_a_third_and_can_evict_them() -> None:
    for n in range(1, 60):
        q, f = default_threshold(n), tolerated_faults(n)
        assert 2 * q > n + f, "two conflicting versions would need an honest double-signer"
        assert q <= n - f, "the honest members alone must be able to remove the faulty ones"
    assert [default_threshold(n) for n in (1, 2, 3, 4, 5, 7)] == [1, 2, 2, 3, 4, 5]


def test_genesis_needs_every_founder() -> None:
    tn = network(*FIVE)
    assert verify_genesis(tn.cert).orgs() == sorted(FIVE)
    partial = RosterCert(roster=tn.cert.roster, approvals=tn.cert.approvals[:-1])
    with pytest.raises(FederationError) as info:
        verify_genesis(partial)
    assert info.value.reason is Reason.ROSTER_THRESHOLD


def test_genesis_rejects_duplicate_orgs() -> None:
    k = key("dup")
    with pytest.raises(FederationError):
        make_genesis([card("a-org", k), card("a-org", key("x"))], threshold=None, created_ms=0)


def test_threshold_must_be_a_strict_majority() -> None:
    with pytest.raises(FederationError):
        make_genesis([card(o, key(o)) for o in FIVE], threshold=2, created_ms=0)


def test_next_version_with_threshold_of_orgs_is_valid() -> None:
    tn = network(*FIVE)
    data = _next(tn, threshold=3)
    new = verify_next(
        tn.roster, tn.roster_bytes, _approve(tn, data, "a-org", "b-org", "c-org", "d-org")
    )
    assert new.version == 1 and new.threshold == 3


def test_too_few_approvals_are_rejected() -> None:
    tn = network(*FIVE)  # threshold 4
    data = _next(tn, threshold=3)
    with pytest.raises(FederationError) as info:
        verify_next(tn.roster, tn.roster_bytes, _approve(tn, data, "a-org", "b-org", "c-org"))
    assert info.value.reason is Reason.ROSTER_THRESHOLD


def test_one_org_signing_twice_counts_once() -> None:
    tn = network(*FIVE)
    data = _next(tn, threshold=3)
    cert = _approve(tn, data, "a-org", "b-org", "c-org", "c-org", "c-org")
    with pytest.raises(FederationError) as info:
        verify_next(tn.roster, tn.roster_bytes, cert)
    assert info.value.reason is Reason.ROSTER_DUPLICATE_ORG


def test_approval_under_an_uncurrent_key_does_not_count() -> None:
    tn = network(*FIVE)
    data = _next(tn, threshold=3)
    approvals = [sign_roster(tn.keys[o], o, 1, data) for o in ("a-org", "b-org", "c-org")]
    approvals.append(sign_roster(key("intruder"), "d-org", 1, data))
    with pytest.raises(FederationError):
        verify_next(tn.roster, tn.roster_bytes, RosterCert(roster=data, approvals=approvals))


def test_new_member_key_must_sign() -> None:
    tn = network(*FIVE)
    newcomer = key("f-org")
    members = sorted(
        [*tn.roster.members, member_from_card(card("f-org", newcomer))], key=lambda m: m.org
    )
    data = _next(tn, members=members)
    cert = _approve(tn, data, "a-org", "b-org", "c-org", "d-org")
    with pytest.raises(FederationError) as info:
        verify_next(tn.roster, tn.roster_bytes, cert)
    assert info.value.reason is Reason.ROSTER_MISSING_NEW_KEY
    with_pop = RosterCert(
        roster=data, approvals=[*cert.approvals, sign_roster(newcomer, "f-org", 1, data)]
    )
    assert verify_next(tn.roster, tn.roster_bytes, with_pop).member("f-org") is not None


def test_newcomer_signature_does_not_count_toward_threshold() -> None:
    tn = network(*FIVE)
    newcomer = key("f-org")
    members = sorted(
        [*tn.roster.members, member_from_card(card("f-org", newcomer))], key=lambda m: m.org
    )
    data = _next(tn, members=members)
    approvals = [sign_roster(tn.keys[o], o, 1, data) for o in ("a-org", "b-org", "c-org")]
    approvals.append(sign_roster(newcomer, "f-org", 1, data))
    with pytest.raises(FederationError) as info:
        verify_next(tn.roster, tn.roster_bytes, RosterCert(roster=data, approvals=approvals))
    assert info.value.reason is Reason.ROSTER_THRESHOLD


def test_version_must_follow_and_link() -> None:
    tn = network(*FIVE)
    skip = encode_roster(
        msgspec.structs.replace(tn.roster, version=2, prev=roster_id(tn.roster_bytes))
    )
    with pytest.raises(FederationError) as info:
        verify_next(tn.roster, tn.roster_bytes, _approve(tn, skip, *FIVE))
    assert info.value.reason is Reason.ROSTER_VERSION
    wrong_prev = encode_roster(msgspec.structs.replace(tn.roster, version=1, prev=b"\x00" * 32))
    with pytest.raises(FederationError):
        verify_next(tn.roster, tn.roster_bytes, _approve(tn, wrong_prev, *FIVE))


def test_removed_member_moves_to_former_and_keeps_history() -> None:
    tn = network(*FIVE)
    gone = tn.roster.member("e-org")
    assert gone is not None
    members = [m for m in tn.roster.members if m.org != "e-org"]
    dropped = _next(tn, members=members, threshold=3)
    with pytest.raises(FederationError):  # forgetting an org would orphan its history
        verify_next(tn.roster, tn.roster_bytes, _approve(tn, dropped, *FIVE[:4]))
    data = _next(
        tn,
        members=members,
        former=[gone],
        threshold=3,
        cutoffs=[Cutoff(org="e-org", epoch=1, last_seq=7)],
    )
    new = verify_next(tn.roster, tn.roster_bytes, _approve(tn, data, *FIVE[:4]))
    ring = Keyring(new)
    assert ring.resolve("e-org", 1, 7) is not None
    with pytest.raises(ValidationError) as info:
        ring.resolve("e-org", 1, 8)
    assert info.value.reason is Reason.EPOCH_CUT_OFF


def test_a_removal_must_cut_the_member_so_it_signs_nothing_new() -> None:
    """Moved to former without a cutoff, a member could sign on for ever (and a colluding
    peer relay it): such a roster is refused, and next_roster will not make one."""
    tn = network(*FIVE)
    gone = tn.roster.member("e-org")
    assert gone is not None
    members = [m for m in tn.roster.members if m.org != "e-org"]
    uncut = _next(tn, members=members, former=[gone], threshold=3)
    with pytest.raises(FederationError, match="must cut its key epoch 1") as info:
        verify_next(tn.roster, tn.roster_bytes, _approve(tn, uncut, *FIVE[:4]))
    assert info.value.reason is Reason.BAD_ROSTER
    with pytest.raises(FederationError, match="needs a cutoff"):
        next_roster(tn.roster, tn.roster_bytes, remove=["e-org"], created_ms=1)


def test_a_former_member_signs_nothing_in_an_epoch_its_removal_did_not_cut() -> None:
    """Its chain may have begun an epoch (a key rotation) the removal did not name: that
    epoch signs nothing once the removal is adopted; the cut one stays valid to its cut."""
    tn = network(*FIVE)
    gone = tn.roster.member("e-org")
    assert gone is not None
    members = [m for m in tn.roster.members if m.org != "e-org"]
    data = next_roster(
        tn.roster,
        tn.roster_bytes,
        remove=["e-org"],
        cut=[Cutoff(org="e-org", epoch=1, last_seq=3)],
        created_ms=1,
    )
    new = verify_next(tn.roster, tn.roster_bytes, _approve(tn, data, *FIVE[:4]))
    assert [m.org for m in new.former] == ["e-org"] and len(new.members) == len(members)
    rotated = Rotation("e-org", 1, 2, 2, pub(key("e-org-2")), bytes(32))
    ring = Keyring(new, [rotated])
    assert ring.knows("e-org", 2)
    assert not ring.may_sign("e-org", 2, 1)
    with pytest.raises(ValidationError, match="former member") as info:
        ring.resolve("e-org", 2, 1)
    assert info.value.reason is Reason.EPOCH_CUT_OFF
    assert ring.resolve("e-org", 1, 2) is not None  # its history before the cut verifies


def test_compromised_key_is_cut_and_a_new_epoch_added() -> None:
    tn = network(*FIVE)
    new_key = key("c-org-epoch-2")
    members = [
        msgspec.structs.replace(m, sign_keys=[*m.sign_keys, SignKey(epoch=2, pub=pub(new_key))])
        if m.org == "c-org"
        else m
        for m in tn.roster.members
    ]
    data = _next(tn, members=members, cutoffs=[Cutoff(org="c-org", epoch=1, last_seq=41)])
    approvals = [sign_roster(tn.keys[o], o, 1, data) for o in ("a-org", "b-org", "d-org", "e-org")]
    approvals.append(sign_roster(new_key, "c-org", 2, data))
    new = verify_next(tn.roster, tn.roster_bytes, RosterCert(roster=data, approvals=approvals))
    ring = Keyring(new)
    with pytest.raises(ValidationError):
        ring.resolve("c-org", 1, 42)
    assert ring.resolve("c-org", 2, 1).public_bytes_raw() == pub(new_key)
    # A later version may not quietly lift the cutoff.
    lifted = encode_roster(
        msgspec.structs.replace(new, version=2, prev=roster_id(data), cutoffs=[])
    )
    with pytest.raises(FederationError):
        verify_next(
            new,
            data,
            RosterCert(
                roster=lifted, approvals=[sign_roster(tn.keys[o], o, 1, lifted) for o in FIVE]
            ),
        )


def test_roster_decode_checks_consistency() -> None:
    tn = network(*FIVE)
    unsorted = msgspec.structs.replace(tn.roster, members=list(reversed(tn.roster.members)))
    with pytest.raises(DecodeError):
        encode_roster(unsorted)
    assert decode_roster(tn.roster_bytes) == tn.roster
    assert isinstance(tn.roster, Roster)


def test_cards_are_self_signed() -> None:
    k = key("a-org")
    signed = sign_card(k, card("a-org", k))
    assert open_card(msgspec.msgpack.encode(signed)).org == "a-org"
    forged = msgspec.structs.replace(signed, sig=key("b-org").sign(b"x"))
    with pytest.raises(SignatureError):
        open_card(msgspec.msgpack.encode(forged))


def test_escalation_policy_travels_in_the_roster_and_absence_keeps_the_old_form() -> None:
    tn = network(*FIVE)
    assert tn.roster.policy is None
    assert Policy.of(tn.roster).step_s[Urgency.IMMEDIATE] == 600, "defaults without a policy"
    legacy_members = [msgspec.structs.astuple(m)[:-1] for m in tn.roster.members]
    fields = msgspec.structs.astuple(tn.roster)[:-1]
    legacy = msgspec.msgpack.encode([*fields[:4], legacy_members, *fields[5:]])
    assert tn.roster_bytes == legacy, "a roster without policy keeps its eight-field bytes and id"

    assert all(len(m) == 9 for m in legacy_members), "members without a state keep nine fields"

    fast = NetworkPolicy(immediate_s=120, days_s=3600, weeks_s=86400, max_direct=2)
    data = _next(tn, policy=fast)
    assert decode_roster(data).policy == fast
    assert Policy.of(decode_roster(data)).step_ms(Urgency.IMMEDIATE) == 120_000
    approved = RosterCert(
        roster=data, approvals=[sign_roster(tn.keys[o], o, 1, data) for o in FIVE]
    )
    assert verify_next(tn.roster, tn.roster_bytes, approved).policy == fast

    spelled_nil = msgspec.msgpack.encode((*msgspec.structs.astuple(tn.roster)[:-1], None))
    with pytest.raises(DecodeError):
        decode_roster(spelled_nil)  # one value, one encoding: an explicit nil is refused
    too_fast = msgspec.msgpack.encode(
        (*msgspec.structs.astuple(tn.roster)[:-1], (0, 3600, 86400, 2))
    )
    with pytest.raises(DecodeError):
        decode_roster(too_fast)
