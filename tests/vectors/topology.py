"""Make tests/vectors/topology.json: the links a roster's `links = k` gives
(PROTOCOL.md 10.5), for another implementation to reproduce exactly.

Each case lists the members (org id, and whether it lists endpoints), k (null:
a full mesh) and every link as [dialler, acceptor], sorted. The file is exactly
what the code computes (tests/protocol/test_vectors.py); regenerate with
`python -m tests.vectors.topology` only when the rule changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rrn.federation.topology import edges, ring_key

PATH = Path(__file__).with_name("topology.json")

CITIES = [
    "berlin-fd",
    "bogota-cj",
    "jakarta-pb",
    "lima-hr",
    "manila-hrc",
    "nairobi-dl",
    "oslo-emb",
    "quito-co",
    "tunis-lg",
]
#: Behind NAT (no endpoints): they only dial.
NAT = {"jakarta-pb", "quito-co"}
CASES = [("full mesh", None), ("k=2, a ring", 2), ("k=3, odd: across the ring", 3), ("k=4", 4)]


def _dialler(a: str, b: str) -> list[str]:
    """The side that dials: the one behind NAT, else the org id that sorts first."""
    if a in NAT:
        return [a, b]
    if b in NAT:
        return [b, a]
    return [a, b] if a < b else [b, a]


def build() -> dict[str, Any]:
    members = [(org, org not in NAT) for org in CITIES]
    return {
        "rule": "docs/PROTOCOL.md 10.5 (links of a sparse mesh)",
        "members": [{"org": org, "endpoints": reachable} for org, reachable in members],
        "ring_keys": {org: ring_key(org).hex() for org in CITIES},
        "cases": [
            {
                "name": name,
                "links": k,
                "edges": sorted(_dialler(a, b) for a, b in edges(members, k)),
            }
            for name, k in CASES
        ],
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH}")
