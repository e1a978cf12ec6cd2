"""`rrn status`: a snapshot of a running node, with the health an operator acts on.

Owns what the status says beyond identity: members heard of those this node links
to, how far behind it is, whether it signs, coverage gaps in the next 24 hours,
free disk, and why it is not ready (the same reasons /readyz gives).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rrn.node.daemon.versions import rrn_version
from rrn.node.membership.policy import describe_limits, describe_mesh, describe_policy
from rrn.node.ops.types import StatusInfo

if TYPE_CHECKING:
    from rrn.node.daemon.node import Node

__all__ = ["rrn_version", "status_of"]


def status_of(node: Node) -> StatusInfo:
    """A snapshot of `node` for `rrn status`."""
    ingestor = node.ingestor
    me, network = ingestor.me, ingestor.network
    head = ingestor.heads.get((me.org, me.epoch))
    peers = node.peering.peers
    linked = [org for org, link in peers.link_kinds().items() if link != "relayed"]
    down = peers.down()
    registry = node.metrics.registry
    behind = sum(
        registry.get_sample_value("rrn_sync_behind_events", {"origin": o}) or 0
        for o in network.roster.orgs()
    )
    gaps = {
        f"{s.labels['kind']} {s.labels['key']}": s.value
        for metric in node.metrics.alerting.coverage_gap.collect()
        for s in metric.samples
        if s.labels.get("horizon") == "24h" and s.value > 0
    }
    return StatusInfo(
        org=me.org,
        name=node.config.node.name,
        version=rrn_version(),
        network=network.net.hex(),
        roster_version=network.roster_version,
        escalation=describe_policy(network.roster.policy),
        limits=describe_limits(network.roster.policy),
        mesh=describe_mesh(network.roster.policy),
        members=network.roster.orgs(),
        epoch=me.epoch,
        seq=head.seq if head else 0,
        events=ingestor.stored,
        open_alerts=ingestor.open_alerts,
        appends_blocked=ingestor.appends_blocked,
        frozen=[f"{o}/{e} after seq {s}" for (o, e), s in sorted(ingestor.chains.frozen.items())],
        nats_url=node.natsd.url,
        metrics_url=node.metrics_url,
        started_ms=node.started_ms,
        linked=sorted(linked),
        quiet=sorted(org for org in linked if org in down),
        behind=int(behind),
        acting=peers.settled(),
        coverage_gaps_24h_s=gaps,
        disk_free_bytes=shutil.disk_usage(node.home.path).free,
        not_ready=node.health.problems(),
        tz_database=node.versions.tz_database,
        nats_server=node.versions.nats_server,
        lock_sha256=node.versions.lock_sha256,
    )


def write_daemon_file(path: Path, info: dict[str, object]) -> Callable[[], None]:
    """Write run/daemon.json (how the CLI finds the running daemon) atomically; what
    removes it when the daemon stops."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, path)
    return lambda: path.unlink(missing_ok=True)
