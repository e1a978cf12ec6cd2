"""Webhooks on a real network, to real HTTP receivers: signed as Standard Webhooks
specifies (checked with its reference library), filtered, retried in order while the
receiver is down so that each notice arrives exactly once by its webhook-id, given up
on into a dead letter an operator replays, and never carrying a defender's details."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nats
import pytest
from standardwebhooks.webhooks import Webhook

from rrn.node.natsd.conf import DAEMON_USER
from tests.netkit import TestNetwork
from tests.receiver import Receiver

pytestmark = pytest.mark.integration


def _configure(net: TestNetwork, k: int, text: str) -> None:
    net.devnet.stop(k)
    with (net.home(k) / "config.toml").open("a") as f:
        f.write("\n" + text)
    net.devnet.start(k)


def _security_notice(net: TestNetwork, k: int) -> None:
    """A fork notice, as the daemon sends one: the notices stream keeps it too, and
    it is not a notice about an alert."""

    async def send() -> None:
        password = (net.home(k) / "keys" / "nats.pass").read_text().strip()
        url = net.cli_json(k, "status")["nats_url"]
        nc = await nats.connect(url, user=DAEMON_USER, password=password)
        await nc.publish("rrn.local.alerts.security", b'{"type": "fork", "detail": "x"}')
        await nc.flush()
        await nc.close()

    asyncio.run(send())


def _raise(net: TestNetwork, severity: str, *extra: str) -> str:
    return str(net.cli_json(1, "alert", "raise", "--country", "PE", "--type", "raid",
                            "--severity", severity, "--urgency", "days", *extra)["id"])  # fmt: skip


def test_notices_reach_webhooks_once_each_in_order_and_dead_letters_replay(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    cases = gone = None
    try:
        secret = net.cli_json(2, "webhook", "secret", "cases")["secret"]
        net.cli_json(2, "webhook", "secret", "gone")
        verifier = Webhook(secret)
        cases = Receiver(verifier.verify).start()
        gone = Receiver()  # not started: nothing listens there
        _configure(
            net,
            2,
            f"""
[[webhooks]]
name = "cases"
url = "{cases.url}"
secret_file = "keys/webhook-cases.secret"
severity = ["moderate"]

[[webhooks]]
name = "gone"
url = "{gone.url}"
secret_file = "keys/webhook-gone.secret"
severity = ["moderate"]
give_up_after_s = 3
""",
        )
        details = tmp_path / "details.json"
        details.write_text('{"identity": "CANARY-name", "location": "CANARY-place"}')
        first = _raise(net, "moderate", "--details", str(details))
        _raise(net, "severe")  # filtered out: the receivers want moderate ones only
        net.wait(lambda: len(cases.taken) >= 1, "the first notice delivered")
        _security_notice(net, 2)  # in the same stream; the webhooks carry on past it

        cases.answer = 503  # the receiver is down for a while; alerts keep coming
        during = [_raise(net, "moderate") for _ in range(3)]
        net.wait(lambda: cases.refused >= 2, "deliveries refused and retried")
        cases.answer = 204
        net.wait(lambda: len({json.loads(b)["data"]["alert"] for _, b in cases.taken}) >= 4,
                 "every notice after the receiver came back", timeout=90)  # fmt: skip

        ids = [h["webhook-id"] for h, _ in cases.taken]
        assert len(ids) == len(set(ids)), "each notice once (by webhook-id)"
        alerts = [json.loads(b)["data"]["alert"] for _, b in cases.taken]
        assert alerts == [first, *during], "in the order they were sent; the severe one filtered"
        for headers, body in cases.taken:
            doc = json.loads(body)
            assert (
                doc["type"] == f"notice.{doc['data']['type']}"
                and doc["data"]["id"] == headers["webhook-id"]
            )
        assert all(b"CANARY" not in body for _, body in cases.taken)
        assert (
            net.metric(2, "rrn_webhook_deliveries_total", webhook="cases", outcome="filtered") >= 1
        )

        net.wait(
            lambda: net.cli_json(2, "webhook", "dead", "gone") != [], "a dead letter", timeout=60
        )
        dead = net.cli_json(2, "webhook", "dead", "gone")
        assert dead[0]["attempts"] >= 2 and "no answer" in dead[0]["last_error"]
        assert net.metric(2, "rrn_webhook_dead_letters", webhook="gone") >= 1
        gone.start()
        time.sleep(0.2)
        replayed = net.cli_json(2, "webhook", "replay", "gone")
        assert replayed["sent"] >= 1
        assert {h["webhook-id"] for h, _ in gone.taken} >= {d["id"] for d in dead}
    finally:
        for r in (cases, gone):
            if r is not None:
                r.stop()
        net.close()


def test_a_notice_of_an_alert_deleted_while_it_is_retried_is_never_sent_nor_kept(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    desk = None
    try:
        net.cli_json(2, "webhook", "secret", "desk")
        desk = Receiver()  # down for now
        desk.answer = 503
        desk.start()
        _configure(
            net,
            2,
            f"""
[[webhooks]]
name = "desk"
url = "{desk.url}"
secret_file = "keys/webhook-desk.secret"
give_up_after_s = 600
""",
        )
        details = tmp_path / "details.json"
        details.write_text('{"identity": "CANARY-name"}')
        alert = _raise(net, "moderate", "--details", str(details))
        net.wait(lambda: desk.refused >= 1, "the notice refused and being retried")
        assert net.metric(2, "rrn_webhook_retrying", webhook="desk") == 1
        net.cli(1, "alert", "forget", alert[:12], "--reason", "consent_withdrawn")
        net.wait(
            lambda: net.metric(2, "rrn_webhook_deliveries_total", webhook="desk",
                               outcome="deleted") >= 1,
            "the retried notice dropped once its alert is deleted", timeout=90,
        )  # fmt: skip
        desk.answer = 204  # the receiver comes back: nothing of the deleted alert arrives
        later = _raise(net, "moderate")
        net.wait(lambda: len(desk.taken) >= 1, "the next notice delivered")
        assert {json.loads(b)["data"]["alert"] for _, b in desk.taken} == {later}
        assert net.cli_json(2, "webhook", "dead", "desk") == []
        assert net.metric(2, "rrn_webhook_retrying", webhook="desk") == 0
    finally:
        if desk is not None:
            desk.stop()
        net.close()
