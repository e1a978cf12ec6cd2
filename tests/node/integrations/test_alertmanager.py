"""A real Alertmanager routes a node's notices: an alert that asks this member fires
there with its routable labels, is resolved when claimed, and no identifying detail
reaches Alertmanager or the receiver it routes to (every byte checked)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_monitoring import tool
from tests.netkit import TestNetwork
from tests.node.integrations.test_webhooks import _configure, _raise
from tests.procs import free_port, wait_until
from tests.receiver import Receiver

pytestmark = pytest.mark.integration


class _Proxy:
    """Forwards requests to Alertmanager and keeps every byte the node sent it."""

    def __init__(self, upstream: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sent: list[bytes] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                proxy.sent.append(body)
                request = urllib.request.Request(
                    upstream + self.path, data=body, method="POST",
                    headers={"content-type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=10) as answer:
                    self.send_response(answer.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    """A real Alertmanager that routes everything at once to a local receiver."""
    binary = tool("prometheus-alertmanager")
    receiver = Receiver().start()
    port = free_port()
    conf = tmp_path / "alertmanager.yml"
    conf.write_text(f"""
route:
  receiver: hook
  group_by: [alert]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {receiver.url}
        send_resolved: true
""")
    proc = subprocess.Popen(
        [binary, f"--config.file={conf}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 30, "Alertmanager to be ready")
        yield url, receiver
    finally:
        proc.terminate()
        proc.wait(15)
        receiver.stop()
        shutil.rmtree(tmp_path / "am", ignore_errors=True)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
            return int(r.status) == 200
    except OSError:
        return False


def _notified(receiver: Receiver) -> list[dict[str, Any]]:
    """Every alert Alertmanager sent the receiver, with its group's status."""
    out = []
    for _, body in receiver.taken:
        doc = json.loads(body)
        out += [a | {"group_status": doc["status"]} for a in doc["alerts"]]
    return out


def test_alertmanager_routes_a_notice_and_its_resolution(
    tmp_path: Path, alertmanager: tuple[str, Receiver]
) -> None:
    url, receiver = alertmanager
    proxy = _Proxy(url)
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        _configure(
            net,
            2,
            f'[alertmanager]\nurl = "{proxy.url}"\nlink = "https://console.example/alerts/{{alert}}"\nresend_s = 5\n',
        )
        details = tmp_path / "details.json"
        details.write_text('{"identity": "CANARY-name", "contacts": "CANARY-phone"}')
        started = time.monotonic()
        alert = _raise(net, "severe", "--details", str(details))
        net.wait(
            lambda: any(a["labels"].get("alert") == alert and a["status"] == "firing"
                        for a in _notified(receiver)),
            "Alertmanager to route the alert",
        )  # fmt: skip
        firing = next(a for a in _notified(receiver) if a["labels"].get("alert") == alert)
        labels = firing["labels"]
        assert labels | {"alert": alert} == {
            "alertname": "RrnAlert", "org": net.org(2), "alert": alert, "severity": "severe",
            "urgency": "days", "level": "0", "country": "PE", "exercise": "false",
            "notice": labels["notice"],
        }  # fmt: skip
        assert labels["notice"] in ("targeted", "pool")
        assert firing["annotations"]["link"] == f"https://console.example/alerts/{alert}"

        net.cli(2, "alert", "claim", alert[:12])
        net.wait(
            lambda: any(a["labels"].get("alert") == alert and a["status"] == "resolved"
                        for a in _notified(receiver)),
            "the claim to resolve it in Alertmanager",
        )  # fmt: skip
        everything = b"".join(proxy.sent) + b"".join(body for _, body in receiver.taken)
        assert b"CANARY" not in everything
        # Posts come on changes and every resend_s, not in a loop.
        elapsed = time.monotonic() - started
        assert len(proxy.sent) <= elapsed / 5 + 6, (len(proxy.sent), elapsed)
        pseudonym = net.cli_json(1, "alert", "show", alert[:12])["alert"]["pseudonym"]
        assert pseudonym.encode() not in everything
    finally:
        proxy.stop()
        net.close()
