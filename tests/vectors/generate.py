"""Generate tests/vectors/events.json: published vectors for other implementations.

Run `python -m tests.vectors.generate` to rewrite the file. Everything is
deterministic (fixed key seeds, fixed times; Ed25519 signatures are
deterministic), and tests/protocol/test_vectors.py checks that the file is
exactly what this produces, so the vectors can never drift from the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.protocol.alerts import AlertClaimed, AlertRaised, Ask
from rrn.protocol.encoding import (
    DOMAIN_EVENT,
    DOMAIN_EVENT_ID,
    DOMAIN_ROSTER,
    DOMAIN_ROSTER_ID,
    encode,
    pae,
)
from rrn.protocol.envelope import MAX_ENVELOPE_BYTES, Event
from rrn.protocol.membership import rotation_statement, sign_rotation
from rrn.protocol.roster import encode_cert
from rrn.protocol.vocabulary import ActionType, SupporterRole
from tests.support import Chain, key, network, raised
from tests.vectors import asks, checkins, collective, rules

PATH = Path(__file__).with_name("events.json")
ORGS = ("lima-hr", "nairobi-dl")


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def _valid(name: str, e: Event) -> dict[str, Any]:
    h = e.header
    return {
        "name": name,
        "envelope": e.envelope().hex(),
        "header": e.header_bytes.hex(),
        "signature": e.sig.hex(),
        "payload": _hex(e.payload),
        "signing_input": pae(DOMAIN_EVENT, e.header_bytes).hex(),
        "id": e.id.hex(),
        "decoded": {
            "v": h.v,
            "net": h.net.hex(),
            "origin": h.origin,
            "epoch": h.epoch,
            "seq": h.seq,
            "prev": _hex(h.prev),
            "kind": h.kind,
            "wall_ms": h.wall_ms,
            "roster_ver": h.roster_ver,
            "refs": [r.hex() for r in h.refs],
            "payload_hash": h.payload_hash.hex(),
            "payload_len": h.payload_len,
        },
    }


def _resign(header_fields: list[Any], key_org: str, tn: Any, payload: bytes | None) -> str:
    hb = encode(header_fields)
    return encode((hb, tn.keys[key_org].sign(pae(DOMAIN_EVENT, hb)), payload)).hex()


def build() -> dict[str, Any]:
    """The whole vectors document."""
    tn = network(*ORGS)
    payload_rules = rules.payload_rules(tn)  # before _rotation changes lima-hr's key
    export = rules.export(tn)
    chain = Chain(tn, "lima-hr")
    first = chain.next(raised(0))
    second = chain.next(
        AlertRaised(
            country="KE",
            subdivision="KE-30",
            incident_types=raised(1).incident_types,
            severity=raised(1).severity,
            urgency=raised(1).urgency,
            asks=[Ask(action=ActionType.LEGAL_AID, to=SupporterRole.NGO)],
            languages=["sw", "en"],
            pseudonym=raised(1).pseudonym,
            exercise=True,
        )
    )
    third = chain.next(AlertClaimed(alert=first.id), refs=[first.id])
    fields = _header_fields(second)
    other = network("lima-hr", "nairobi-dl", "jakarta-pb")
    foreign = Chain(other, "lima-hr").next(raised(0))

    def flip(data: bytes, at: int) -> bytes:
        out = bytearray(data)
        out[at] ^= 0x01
        return bytes(out)

    p = second.payload or b""
    invalid = [
        (
            "header byte flipped (inside prev)",
            encode((flip(second.header_bytes, 50), second.sig, p)),
            "bad_signature",
        ),
        (
            "signature byte flipped",
            encode((second.header_bytes, flip(second.sig, 0), p)),
            "bad_signature",
        ),
        (
            "payload byte flipped",
            encode((second.header_bytes, second.sig, flip(p, 10))),
            "payload_hash_mismatch",
        ),
        (
            "payload truncated",
            encode((second.header_bytes, second.sig, p[:-1])),
            "payload_length_mismatch",
        ),
        (
            "signed by another member's key",
            bytes.fromhex(_resign(fields, "nairobi-dl", tn, p)),
            "bad_signature",
        ),
        ("event of another network", foreign.envelope(), "wrong_network"),
        (
            "origin not in the roster",
            bytes.fromhex(_resign(_with(fields, 2, "quito-x"), "lima-hr", tn, p)),
            "unknown_origin",
        ),
        (
            "epoch not in the roster",
            bytes.fromhex(_resign(_with(fields, 3, 2), "lima-hr", tn, p)),
            "unknown_epoch",
        ),
        (
            "header version 2",
            bytes.fromhex(_resign(_with(fields, 0, 2), "lima-hr", tn, p)),
            "unsupported_version",
        ),
        (
            "prev set at seq 1",
            bytes.fromhex(_resign(_with(fields, 4, 1), "lima-hr", tn, p)),
            "malformed_header",
        ),
        (
            "origin with a dot",
            bytes.fromhex(_resign(_with(fields, 2, "lima.hr"), "lima-hr", tn, p)),
            "malformed_header",
        ),
        (
            "seventeen refs",
            bytes.fromhex(_resign(_with(fields, 9, [b"\x00" * 32] * 17), "lima-hr", tn, p)),
            "malformed_header",
        ),
        (
            "header with an extra field",
            bytes.fromhex(_resign([*fields, 0], "lima-hr", tn, p)),
            "malformed_header",
        ),
        ("header not canonical (epoch as uint64)", _non_canonical(fields, tn, p), "non_canonical"),
        (
            "envelope not canonical (signature as bin16)",
            b"\x93" + encode(second.header_bytes) + b"\xc5\x00\x40" + second.sig + encode(p),
            "non_canonical",
        ),
        ("envelope is a map", encode({"h": second.header_bytes}), "malformed_envelope"),
        (
            "envelope with two elements",
            encode((second.header_bytes, second.sig)),
            "malformed_envelope",
        ),
        (
            "signature of 63 bytes",
            encode((second.header_bytes, second.sig[:63], p)),
            "malformed_envelope",
        ),
    ]
    return {
        "description": (
            "rrn protocol v1 test vectors. Hex everywhere. Keys are Ed25519 private "
            "seeds; verify each valid envelope to the given id, and reject each invalid "
            "one with the given reason (docs/PROTOCOL.md, 'Verification')."
        ),
        "domains": {
            "event": DOMAIN_EVENT.decode(),
            "event_id": DOMAIN_EVENT_ID.decode(),
            "roster": DOMAIN_ROSTER.decode(),
            "roster_id": DOMAIN_ROSTER_ID.decode(),
        },
        "network": {
            "members": [
                {
                    "org": o,
                    "seed": tn.keys[o].private_bytes_raw().hex(),
                    "public": tn.keys[o].public_key().public_bytes_raw().hex(),
                    "epoch": 1,
                }
                for o in ORGS
            ],
            "genesis_roster": tn.roster_bytes.hex(),
            "genesis_cert": encode_cert(tn.cert).hex(),
            "network_id": tn.net.hex(),
        },
        "valid": [
            _valid("first event of a chain (alert.raised)", first),
            _valid("second event, drill with asks and a subdivision", second),
            _valid(
                "alert.claimed with a ref (verifies; applying it is refs_not_empty, 3.7)", third
            ),
            _valid("event without its payload", third.without_payload()),
        ],
        "invalid": [
            {"name": n, "envelope": raw.hex(), "reason": reason} for n, raw, reason in invalid
        ],
        "oversize": {
            "name": "envelope one byte over the limit (0xff repeated); rejected before parsing",
            "byte": "ff",
            "length": MAX_ENVELOPE_BYTES + 1,
            "reason": "oversize_envelope",
        },
        "payload_sha256_of_empty": hashlib.sha256(b"").hexdigest(),
        "key_rotation": _rotation(tn, chain),
        "payload_rules": payload_rules,
        "chain_rules": rules.chain_rules(),
        "authority": rules.authority(),
        "checkins": checkins.checkins(),
        "drills": checkins.drills(),
        "collective": collective.collective(),
        "turns": asks.turns(),
        "removal": rules.removal(),
        "export": export,
    }


def _rotation(tn: Any, chain: Chain) -> dict[str, Any]:
    """lima-hr rotates from epoch 1 to 2 at the end of its chain, then signs under epoch 2."""
    new_key = key("lima-hr-epoch-2")
    enc = X25519PrivateKey.from_private_bytes(hashlib.sha256(b"lima-hr-enc-2").digest())
    enc_pub = enc.public_key().public_bytes_raw()
    seq = chain.seq + 1
    statement = rotation_statement(
        net=tn.net,
        origin="lima-hr",
        from_epoch=1,
        seq=seq,
        epoch=2,
        sign_pub=new_key.public_key().public_bytes_raw(),
        enc_pub=enc_pub,
    )
    rotation = chain.next(
        sign_rotation(
            new_key, net=tn.net, origin="lima-hr", from_epoch=1, seq=seq, epoch=2, enc_pub=enc_pub
        )
    )
    old_epoch_after = chain.next(raised(7))  # signed by the old key after its rotation
    tn.keys["lima-hr"], chain.epoch, chain.seq, chain.prev = new_key, 2, 0, None
    first_of_epoch_2 = chain.next(raised(8))
    return {
        "description": (
            "A key.rotated event (signed by the epoch-1 key) whose payload holds the new "
            "keys and the new key's proof, an Ed25519 signature over `statement`. After it, "
            "epoch 1 ends at its seq and epoch 2 verifies with the new key "
            "(docs/PROTOCOL.md, 'Key rotation')."
        ),
        "new_seed": new_key.private_bytes_raw().hex(),
        "new_public": new_key.public_key().public_bytes_raw().hex(),
        "new_enc_public": enc_pub.hex(),
        "statement": statement.hex(),
        "rotation": _valid("key.rotated from epoch 1 to 2", rotation),
        "next": _valid("first event of epoch 2", first_of_epoch_2),
        "old_key_after_rotation": {
            "envelope": old_epoch_after.envelope().hex(),
            "reason": "epoch_cut_off",
        },
    }


def _header_fields(e: Event) -> list[Any]:
    fields: list[Any] = msgspec.msgpack.decode(e.header_bytes)
    return fields


def _with(fields: list[Any], i: int, value: Any) -> list[Any]:
    out = list(fields)
    out[i] = value
    return out


def _non_canonical(fields: list[Any], tn: Any, payload: bytes) -> bytes:
    head = b"\x9c" + b"".join(encode(f) for f in fields[:3])
    hb = (
        head + b"\xcf" + int(fields[3]).to_bytes(8, "big") + b"".join(encode(f) for f in fields[4:])
    )
    return encode((hb, tn.keys["lima-hr"].sign(pae(DOMAIN_EVENT, hb)), payload))


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH}")
