"""Founding and joining with the documented commands, and what integrators consume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig

from rrn.node.home.layout import open_home
from rrn.node.natsd.conf import EVENTS_STREAM
from rrn.protocol import subjects
from tests.netkit import Capture, TestNetwork, network_id
from tests.procs import Daemon, free_port, init, rrn, rrn_ok

pytestmark = pytest.mark.integration


def test_founding_by_hand_then_joining_and_syncing_the_whole_history(tmp_path: Path) -> None:
    # Three founders, each on its own machine in real life.
    homes = []
    for org, tz in (
        ("lima-hr", "America/Lima"),
        ("nairobi-dl", "Africa/Nairobi"),
        ("jakarta-pb", "Asia/Jakarta"),
    ):
        homes.append(init(tmp_path / org, org, tz, "--advertise", f"127.0.0.1:{free_port()}"))
    for home in homes:
        rrn_ok("member", "card", "--home", home, "--out", tmp_path / f"{home.name}.card")
    genesis = tmp_path / "genesis.json"
    rrn_ok(
        "network",
        "genesis",
        "--home",
        homes[0],
        "--card",
        tmp_path / "nairobi-dl.card",
        "--card",
        tmp_path / "jakarta-pb.card",
        "--out",
        genesis,
    )
    early = rrn("network", "adopt", "--home", homes[0], genesis)
    assert early.returncode == 1 and "lacks the approval" in early.stderr
    for home in homes[1:]:
        assert "signed roster" in rrn_ok("network", "sign", "--home", home, genesis)
    for home in homes:
        assert "is now a member" in rrn_ok("network", "adopt", "--home", home, genesis)
    daemons = [Daemon(h).start() for h in homes]
    newcomer_daemon = None
    try:
        net = TestNetwork.__new__(TestNetwork)  # only for its polling helper
        alerts = [
            rrn_ok(
                "alert",
                "raise",
                "--home",
                homes[i],
                "--country",
                "KE",
                "--type",
                "death_threat",
                "--severity",
                "severe",
                "--urgency",
                "immediate",
                "--json",
            )
            for i in range(3)
        ]
        ids = {json.loads(a)["id"] for a in alerts}
        for home in homes:
            net.wait(lambda home=home: len(_alerts(home)) == 3, f"{home.name} to hold all alerts")

        # A fourth organisation joins: card -> proposal -> its own signature -> approvals.
        newcomer = init(
            tmp_path / "manila-hrc",
            "manila-hrc",
            "Asia/Manila",
            "--advertise",
            f"127.0.0.1:{free_port()}",
        )
        rrn_ok("member", "card", "--home", newcomer, "--out", tmp_path / "manila.card")
        proposal = tmp_path / "proposal.json"
        proposed = json.loads(
            rrn_ok(
                "member",
                "propose",
                "--home",
                homes[0],
                "--add",
                tmp_path / "manila.card",
                "--out",
                proposal,
                "--json",
            )
        )
        assert proposed["approved_by"] == ["lima-hr"]
        rrn_ok("network", "sign", "--home", newcomer, proposal)  # proof of possession
        rrn_ok("member", "approve", "--home", homes[0], "--file", proposal)
        net.wait(
            lambda: (
                len(json.loads(rrn_ok("member", "proposals", "--home", homes[1], "--json"))) == 1
            ),
            "the proposal to reach nairobi",
        )
        rrn_ok("member", "approve", "--home", homes[1], proposed["roster_id"][:10])
        for home in homes:
            net.wait(
                lambda home=home: (
                    json.loads(rrn_ok("status", "--home", home, "--json"))["roster_version"] == 1
                ),
                f"{home.name} to adopt roster v1",
            )
        exported = tmp_path / "network.json"
        rrn_ok("network", "export", "--home", homes[1], "--out", exported)
        assert "is now a member" in rrn_ok("network", "adopt", "--home", newcomer, exported)
        newcomer_daemon = Daemon(newcomer).start()
        net.wait(
            lambda: {a["id"] for a in _alerts(newcomer)} == ids, "the newcomer to sync history", 90
        )

        def linked() -> set[str]:
            peers = json.loads(rrn_ok("peers", "--home", newcomer, "--json"))
            return {p["org"] for p in peers if p["state"] == "up"}

        everyone = {"lima-hr", "nairobi-dl", "jakarta-pb"}
        net.wait(lambda: linked() == everyone, "links to every member")
        welcome = json.loads(
            rrn_ok(
                "alert",
                "raise",
                "--home",
                newcomer,
                "--country",
                "PH",
                "--type",
                "raid",
                "--severity",
                "minor",
                "--urgency",
                "weeks",
                "--json",
            )
        )
        net.wait(
            lambda: welcome["id"] in {a["id"] for a in _alerts(homes[2])},
            "its alert to reach jakarta",
        )
        assert rrn_ok("log", "verify", "--home", newcomer).startswith("ok:")
    finally:
        for d in [*daemons, newcomer_daemon]:
            if d is not None:
                d.close()


def _alerts(home: Path) -> list[dict[str, object]]:
    out = rrn("alert", "list", "--all", "--home", home, "--json")
    return json.loads(out.stdout) if out.returncode == 0 else []


def test_integrators_consume_verified_events_from_jetstream(tmp_path: Path) -> None:
    """An integrator reads the stream of verified events; in an account of its own it
    cannot reach the control channel and can send nothing over a link (what else it
    may not do: tests/node/integrations/test_integrators.py)."""
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        ids = {net.raise_alert(2) for _ in range(3)}
        net.wait_holds(ids)
        home = open_home(net.home(1))
        url = json.loads((home.path / "run" / "daemon.json").read_text())["nats_url"]
        space = f"rrn.{subjects.net_token(network_id(net, 1))}.{net.org(1)}"
        tap = Capture(net, 2)

        account = net.cli_json(1, "integrator", "add", "case-system")
        user, password, inbox = account["user"], account["password"], account["inbox_prefix"]

        async def consume() -> tuple[set[str], bool]:
            nc = await nats.connect(url, user=user, password=password, inbox_prefix=inbox)
            try:
                js = nc.jetstream()
                sub = await js.pull_subscribe(
                    "rrn.local.events.>", durable="case-system", stream=EVENTS_STREAM
                )
                msgs = await sub.fetch(10, timeout=5)
                got = {m.headers["Rrn-Event-Id"] for m in msgs if m.headers}
                for m in msgs:
                    await m.ack()
                denied = False
                try:
                    await nc.request("rrn.local.ctl.lima-hr.request", b"x", timeout=1)
                except NatsError:
                    denied = True
                # A push consumer (of a bucket, where the server names it) delivering into
                # this node's federation space: in the integrators' account that subject
                # leads nowhere.
                info = await js.add_consumer(
                    "KV_RRN_ALERTS", ConsumerConfig(deliver_subject=f"{space}.ev")
                )
                assert info.config.deliver_subject == f"{space}.ev"
                await asyncio.sleep(2)
                return got, denied
            finally:
                await nc.close()

        got, denied = asyncio.run(consume())
        heard = tap.stop()
        assert ids <= got, "every verified event is in the integrators' stream, keyed by event id"
        assert denied, "the integrator user cannot reach the control channel"
        replayed = [m for m in heard if m.startswith(f"{space}.ev".encode())]
        assert replayed == [], "the stream was not re-sent over the link"
    finally:
        net.close()
