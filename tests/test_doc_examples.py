"""Every code example in the docs works as written: each Python block runs against a
live network, as an integrator account, and shows the alert raised there; each
config.toml block is accepted by the node's config loader, each coverage.toml
block by `rrn coverage declare`'s."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rrn.node.alerting.coverage import read_declaration
from rrn.node.home.config import Config, load_config, render_config
from rrn.protocol.errors import RrnError
from tests.deploy.test_monitoring import tool
from tests.netkit import TestNetwork
from tests.procs import ROOT, init

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(language: str) -> list[tuple[str, str]]:
    """(where, code) of every fenced block in that language, dedented."""
    found = []
    for path in DOCS:
        text = path.read_text()
        pattern = rf"^( *)```{language}\n(.*?)^\1```"
        for m in re.finditer(pattern, text, re.S | re.M):
            indent = len(m.group(1))
            code = "\n".join(line[indent:] for line in m.group(2).splitlines())
            line = text[: m.start()].count("\n") + 1
            found.append((f"{path.name}:{line}", code))
    return found


def test_the_docs_have_examples() -> None:
    assert len(_blocks("python")) >= 1 and len(_blocks("toml")) >= 3


@pytest.mark.integration
def test_every_python_example_runs_against_a_live_node(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        alert = net.raise_alert(2)
        net.wait_holds({alert})
        account = net.cli_json(1, "integrator", "add", "docs")
        env = os.environ | {
            "RRN_URL": account["url"],
            "RRN_USER": account["user"],
            "RRN_PASSWORD": account["password"],
            "RRN_NETWORK": net.cli_json(1, "status")["network"],
        }
        for where, code in _blocks("python"):
            _shows(where, code, env, alert[:12], tmp_path)
    finally:
        net.close()


def _shows(where: str, code: str, env: dict[str, str], needle: str, tmp: Path) -> None:
    """Run the example until it prints `needle` (it may run for ever: it is stopped)."""
    script = tmp / "example.py"
    script.write_text(code)
    out = tmp / "example.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(script)], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + 30
            while needle not in out.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, (where, out.read_text())
                time.sleep(0.2)
        finally:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert needle in text and "Traceback" not in text, (where, text)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def test_every_config_example_is_accepted(tmp_path: Path) -> None:
    """Each block, put into a new home's config.toml, passes every check of a start."""
    home = init(tmp_path / "home", "lima-hr")
    base = tomllib.loads((home / "config.toml").read_text())
    for where, code in _blocks("toml"):
        if code.startswith("tz = "):  # a coverage.toml: checked as `rrn coverage declare` does
            path = tmp_path / "coverage.toml"
            path.write_text(code)
            try:
                read_declaration(path, datetime.date(2026, 12, 2))
            except RrnError as exc:
                pytest.fail(f"{where}: {exc}")
            continue
        try:
            merged = _merged(base, tomllib.loads(code))
            config = msgspec.convert(merged, Config)
            (home / "config.toml").write_text(render_config(config))
            load_config(home / "config.toml")
        except (tomllib.TOMLDecodeError, msgspec.ValidationError, RrnError) as exc:
            pytest.fail(f"{where}: {exc}")


def test_every_alertmanager_route_example_is_accepted_by_amtool(tmp_path: Path) -> None:
    """A route shown in the docs, with a receiver for each name it uses, passes amtool."""
    amtool = tool("amtool")
    routes = [(w, c) for w, c in _blocks("yaml") if c.startswith("route:")]
    assert routes
    for where, code in routes:
        names = sorted(set(re.findall(r"receiver: ([\w-]+)", code)))
        receivers = "".join(
            f"  - name: {n}\n    webhook_configs:\n      - url: http://127.0.0.1:9/\n"
            for n in names
        )
        conf = tmp_path / "alertmanager.yml"
        conf.write_text(code + "\nreceivers:\n" + receivers)
        done = subprocess.run(
            [amtool, "check-config", str(conf)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (where, done.stdout + done.stderr)
