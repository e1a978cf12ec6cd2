"""Installs a security reviewer can verify: the locks install exactly, a changed
artefact is refused, the locks match pyproject.toml, and the SBOM names what runs.

These tests use the package registry (as `make install` does) and pip's cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.procs import ROOT, rrn_json

pytestmark = pytest.mark.integration

LOCKS = ROOT / "deploy" / "lock"
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.M)


def _pins(lock: Path) -> dict[str, str]:
    return {_norm(name): v for name, v in _PIN.findall(lock.read_text())}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(where)
    return where / "bin" / "python"


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", *args, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_the_runtime_lock_installs_exactly_into_a_clean_venv(tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    done = _pip(python, "install", "--require-hashes", "-r", str(LOCKS / "runtime.txt"))
    assert done.returncode == 0, done.stderr[-2000:]
    check = _pip(python, "check")
    assert check.returncode == 0, check.stdout
    listed = _pip(python, "list", "--format", "json")
    have = {_norm(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    pins = _pins(LOCKS / "runtime.txt")
    wrong = {n: (have.get(n), v) for n, v in pins.items() if n in have and have[n] != v}
    missing = [n for n in pins if n not in have and n not in ("cffi", "pycparser")]
    assert not wrong and not missing, (wrong, missing)  # cffi is pinned for CPython only


def test_an_artefact_that_differs_from_the_lock_is_refused(tmp_path: Path) -> None:
    text = (LOCKS / "runtime.txt").read_text()
    block = re.search(r"^idna==[^\n]*\n(?:    --hash=sha256:[0-9a-f]{64}[ \\]*\n)+", text, re.M)
    assert block, "idna is no longer in the lock: pick another small package"
    forged = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, block[0])
    tampered = tmp_path / "runtime.txt"
    tampered.write_text(text.replace(block[0], forged))
    python = _venv(tmp_path / "venv")
    done = _pip(python, "install", "--require-hashes", "-r", str(tampered))
    assert done.returncode != 0
    assert "DO NOT MATCH THE HASHES" in done.stderr and "idna" in done.stderr, done.stderr[-2000:]
    assert _pip(python, "show", "idna").returncode != 0, "the forged package was installed"


def test_the_locks_resolve_what_pyproject_asks(tmp_path: Path) -> None:
    """A dependency added to pyproject.toml without `make lock` fails here."""
    uv = Path(sys.executable).parent / "uv"
    for name, extra in (
        ("runtime.txt", []),
        ("dev.txt", ["--extra", "dev"]),
        ("report.txt", ["--extra", "report"]),
    ):
        copy = tmp_path / name
        copy.write_text((LOCKS / name).read_text())
        done = subprocess.run(
            [
                str(uv), "pip", "compile", str(ROOT / "pyproject.toml"), "--universal",
                "--python-version", "3.11", "--generate-hashes", "--no-header", "--quiet",
                *extra, "-o", str(copy),
            ],
            capture_output=True, text=True, check=False, timeout=300, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert copy.read_text() == (LOCKS / name).read_text(), f"run make lock ({name})"


def test_version_names_the_lock_and_this_install_matches_it() -> None:
    v = rrn_json("version")
    digest = hashlib.sha256((LOCKS / "runtime.txt").read_bytes()).hexdigest()
    assert v["lock_sha256"] == digest and v["lock_differs"] == []
    assert v["tz_source"].startswith("the tzdata package"), "the host's tz database is used"
    assert re.match(r"^20\d\d[a-z]$", v["tz_database"]), v["tz_database"]


def test_the_sbom_lists_every_pin_and_the_nats_server_binary(tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "sbom.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    bom = json.loads(out.read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    components = {_norm(c["name"]): c for c in bom["components"]}
    for name, pinned in _pins(LOCKS / "runtime.txt").items():
        assert components[name]["version"] == pinned, name
    v = rrn_json("version")
    nats = components["nats-server"]
    assert "v" + nats["version"] == v["nats_server"] and len(nats["hashes"][0]["content"]) == 64
    assert components["iana tz database"]["version"] == v["tz_database"]
