"""Make tests/vectors/sealing.json: a sealed blob another implementation must open.

The HPKE wraps are randomised, so the file is generated once and kept; what is
deterministic (the key commitment and the ciphertext under the given content
key) is checked against the code on every test run. Run
`python -m tests.vectors.sealing --regenerate` only when the scheme changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rrn.protocol.encoding import pae
from rrn.protocol.sealing import (
    DOMAIN_SEAL_WRAP,
    DOMAIN_SEALED,
    Details,
    Position,
    encode_details,
    encode_sealed,
    seal,
)

PATH = Path(__file__).with_name("sealing.json")
SEEDS = {"lima-hr": bytes(range(32)), "nairobi-dl": bytes(range(32, 64))}
KEY = bytes.fromhex("42" * 32)
POSITION = Position(net=bytes.fromhex("ab" * 32), origin="lima-hr", epoch=1, seq=7)
#: A details map (msgpack, fields in declaration order, absent fields left out).
PLAINTEXT = encode_details(Details(identity="CANARY-name", location="CANARY-place"))


def build() -> dict[str, object]:
    keys = {org: X25519PrivateKey.from_private_bytes(seed) for org, seed in SEEDS.items()}
    sealed = seal(PLAINTEXT, {o: k.public_key() for o, k in keys.items()}, POSITION, key=KEY)
    return {
        "scheme": "rrn sealed details v1 (docs/PROTOCOL.md, Sealed details)",
        "recipients": {
            org: {
                "x25519_private": seed.hex(),
                "x25519_public": keys[org].public_key().public_bytes_raw().hex(),
                "info": pae(DOMAIN_SEAL_WRAP, POSITION.bytes() + org.encode()).hex(),
            }
            for org, seed in SEEDS.items()
        },
        "position": {
            "net": POSITION.net.hex(),
            "origin": POSITION.origin,
            "epoch": POSITION.epoch,
            "seq": POSITION.seq,
            "bytes": POSITION.bytes().hex(),
        },
        "content_key": KEY.hex(),
        "commit": sealed.commit.hex(),
        "aad": pae(DOMAIN_SEALED, POSITION.bytes() + sealed.commit).hex(),
        "ct": sealed.ct.hex(),
        "plaintext": PLAINTEXT.hex(),
        "details": {"identity": "CANARY-name", "location": "CANARY-place"},
        "sealed": encode_sealed(sealed).hex(),
    }


if __name__ == "__main__":
    if "--regenerate" not in sys.argv:
        sys.exit("the wraps are random: pass --regenerate to replace the published file")
    PATH.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {PATH}")
