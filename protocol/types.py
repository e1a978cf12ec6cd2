"""Constrained scalar types shared by every wire structure.

Owns the shapes of identifiers and limits (org ids, hashes, keys, counters).
Pure; imports only msgspec.
"""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta

__all__ = [
    "MAX_SAFE_INT",
    "Hash32",
    "Key32",
    "NonNeg",
    "OrgId",
    "Positive",
    "Sig64",
]

#: Largest integer every implementation can hold exactly (JSON, JavaScript).
MAX_SAFE_INT: Final = 2**53 - 1

#: An organisation id: lowercase letters, digits and inner hyphens, 2-32 long.
#: It appears in NATS subjects, so it can never contain '.', '*', '>' or spaces.
OrgId = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]

Hash32 = Annotated[bytes, Meta(min_length=32, max_length=32)]
Key32 = Annotated[bytes, Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, Meta(min_length=64, max_length=64)]
NonNeg = Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
Positive = Annotated[int, Meta(ge=1, le=MAX_SAFE_INT)]
