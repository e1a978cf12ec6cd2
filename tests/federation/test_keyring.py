"""Key rotation in the chain: what the keyring honours, and that every node agrees."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.federation.keyring import Keyring, Rotation
from rrn.federation.roster import next_roster
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError, Reason, ValidationError
from rrn.protocol.membership import KeyRotated, sign_rotation
from rrn.protocol.roster import Cutoff, decode_roster
from tests.support import Chain, card, key, network, pub, raised

LIMA, QUITO, NAIROBI = "lima-hr", "quito-x", "nairobi-d"


def _enc(seed: int) -> bytes:
    return X25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key().public_bytes_raw()


def _rotate(chain: Chain, new_seed: str, epoch: int, enc_seed: int = 9) -> tuple[Event, Rotation]:
    """Append a rotation to `chain` (signed by its current key) and move it to the new key."""
    payload = sign_rotation(
        key(new_seed),
        net=chain.tn.net,
        origin=chain.origin,
        from_epoch=chain.epoch,
        seq=chain.seq + 1,
        epoch=epoch,
        enc_pub=_enc(enc_seed),
    )
    event = chain.next(payload)
    assert isinstance(payload, KeyRotated)
    rotation = Rotation.of(event.header, payload)
    chain.tn.keys[chain.origin] = key(new_seed)
    chain.epoch, chain.seq, chain.prev = epoch, 0, None
    return event, rotation


def test_a_rotation_ends_the_old_epoch_and_starts_the_new_one() -> None:
    tn = network(LIMA, QUITO, NAIROBI)
    chain = Chain(tn, QUITO)
    for n in range(3):
        chain.next(raised(n))
    _, rotation = _rotate(chain, "quito-2", 2, enc_seed=7)
    assert (rotation.from_epoch, rotation.seq, rotation.epoch) == (1, 4, 2)
    ring = tn.keyring.learn(rotation)

    ring.resolve(QUITO, 1, 4)  # the rotation itself, signed by the old key
    with pytest.raises(ValidationError) as cut:
        ring.resolve(QUITO, 1, 5)  # the old key can sign nothing more
    assert cut.value.reason is Reason.EPOCH_CUT_OFF
    assert ring.resolve(QUITO, 2, 1).public_bytes_raw() == pub(key("quito-2"))
    assert ring.enc_pub(QUITO) == _enc(7), "members seal to the new key"
    assert ring.enc_pub(LIMA) == tn.roster.member(LIMA).enc_pub  # type: ignore[union-attr]
    assert ring.current(QUITO, 2).public_bytes_raw() == pub(key("quito-2"))
    with pytest.raises(ValidationError):
        ring.current(QUITO, 1)  # messages signed with the old key are refused
    with pytest.raises(ValidationError) as unknown:
        tn.keyring.resolve(QUITO, 2, 1)
    assert unknown.value.reason is Reason.UNKNOWN_EPOCH, "unknown until the rotation is held"


def test_a_proof_cannot_be_forged_moved_or_replayed() -> None:
    tn = network(LIMA, QUITO, NAIROBI)
    chain = Chain(tn, QUITO)
    chain.next(raised(1))
    event, _ = _rotate(chain, "quito-2", 2)
    payload = msgspec.msgpack.decode(event.payload or b"", type=KeyRotated)

    swapped = msgspec.structs.replace(payload, enc_pub=_enc(3))  # someone else's sealing key
    with pytest.raises(ProtocolError) as forged:
        Rotation.of(event.header, swapped)
    assert forged.value.reason is Reason.BAD_ROTATION
    elsewhere = msgspec.structs.replace(event.header, seq=event.header.seq + 1)
    with pytest.raises(ProtocolError, match="proof does not verify"):
        Rotation.of(elsewhere, payload)  # the new key signed this position only
    other_net = msgspec.structs.replace(event.header, net=bytes(32))
    with pytest.raises(ProtocolError, match="proof does not verify"):
        Rotation.of(other_net, payload)
    backwards = sign_rotation(
        key("quito-2"), net=tn.net, origin=QUITO, from_epoch=1, seq=2, epoch=1, enc_pub=_enc(3)
    )
    with pytest.raises(ProtocolError, match="later key epoch"):
        Rotation.of(event.header, backwards)


def test_every_node_computes_the_same_keyring_whatever_the_arrival_order() -> None:
    tn = network(LIMA, QUITO, NAIROBI)
    chain = Chain(tn, QUITO)
    chain.next(raised(1))
    _, first = _rotate(chain, "quito-2", 2)
    chain.next(raised(2))
    _, second = _rotate(chain, "quito-3", 3, enc_seed=11)
    a = Keyring(tn.roster, [first, second])
    b = Keyring(tn.roster, [second, first])
    assert a.rotations == b.rotations == (first, second)
    assert a.latest(QUITO) == b.latest(QUITO) == 3
    assert a.enc_pub(QUITO) == _enc(11)
    assert a.cutoff(QUITO, 2) == 2 and a.cutoff(QUITO, 1) == 2
    with pytest.raises(ValidationError):
        tn.keyring.learn(second)  # from an epoch not yet known: only after the first
    # A second rotation out of the same epoch is refused, wherever it claims to be.
    for seq in (1, 3):
        stale = Rotation(QUITO, 1, seq, 5, pub(key("quito-5")), _enc(5))
        with pytest.raises(ValidationError, match="already ended"):
            a.learn(stale)


def test_the_roster_wins_a_conflict_and_can_record_or_cut_a_rotated_key() -> None:
    tn = network(LIMA, QUITO, NAIROBI)
    chain = Chain(tn, QUITO)
    chain.next(raised(1))
    _, rotation = _rotate(chain, "quito-2", 2)

    # A roster that gave epoch 2 to another key: the chain's rotation is not honoured.
    clash = decode_roster(
        next_roster(
            tn.roster,
            tn.roster_bytes,
            rotate=[card(QUITO, key("other"), epoch=2)],
            created_ms=1,
        )
    )
    ring = Keyring(clash, [rotation])
    assert ring.rotations == ()
    assert ring.pub(QUITO, 2) == pub(key("other"))
    with pytest.raises(ValidationError, match="another key"):
        Keyring(clash).learn(rotation)

    # A roster that records the same key: consistent, the old epoch still ends there.
    recorded = decode_roster(
        next_roster(
            tn.roster, tn.roster_bytes, rotate=[card(QUITO, key("quito-2"), epoch=2)], created_ms=1
        )
    )
    ring = Keyring(tn.roster, [rotation]).rebased(recorded)
    assert ring.rotations == (rotation,) and ring.cutoff(QUITO, 1) == rotation.seq

    # A roster can cut an epoch that only the chain knows (a rotated key compromised later).
    cut = decode_roster(
        next_roster(
            tn.roster,
            tn.roster_bytes,
            cut=[Cutoff(org=QUITO, epoch=2, last_seq=0)],
            created_ms=1,
        )
    )
    ring = Keyring(cut, [rotation])
    with pytest.raises(ValidationError) as refused:
        ring.resolve(QUITO, 2, 1)
    assert refused.value.reason is Reason.EPOCH_CUT_OFF
