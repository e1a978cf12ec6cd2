"""The demo's collective action: an embassy and two companies act together.

Owns the scene of `make demo` in which Lima proposes a joint private letter on its
alert, to go ahead only when two companies and an embassy join by a deadline.
The embassy and one company join: they are counted, not named. The second company
joins: the threshold is met, and each joiner's node learns, at the same moment,
who else is bound. The joiners sign the letter, and Lima prints it with its
signatories for the organisations to send through their own channels.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from rrn.node.devnet.demo_kit import Net, rrn, rrn_json, say, step, wait

__all__ = ["act_together"]

EMBASSY, ACME, ORBIT = 4, 5, 6
JOINERS = (EMBASSY, ACME, ORBIT)

_LETTER = """Your Excellency,

We write together, as partners with long-term investments in the region and as a
diplomatic mission, about the threats against a land defender in Loreto. We ask
that the authorities investigate the threats and guarantee the defender's safety.
"""


def act_together(net: Net, short: str, root: Path) -> None:
    """Propose, join, meet, sign: Lima's letter with an embassy and two companies."""
    step("No company wants to write to a government alone. Lima proposes a joint private")
    say("   letter that binds its signers only if two companies and an embassy join within")
    say("   two hours (the text is sealed to the alert's audience):")
    letter = root / "letter.txt"
    letter.write_text(_LETTER)
    proposal = rrn_json(
        *("collective", "propose", short, "--home", net.home(1), "--action", "private_diplomacy"),
        *("--need", "company=2", "--need", "embassy=1", "--deadline", "2h"),
        *("--text", str(letter)),
    )["proposal"][:12]
    for k in JOINERS:
        wait(f"{net.org(k)} holding the proposal", functools.partial(_held, net, k, proposal))
    say(rrn("collective", "list", "--home", net.home(ACME)).rstrip())
    step(f"{net.org(EMBASSY)} and {net.org(ACME)} join. Nobody is named until the threshold")
    say("   is met; Orbit sees only how many joined:")
    for k in (EMBASSY, ACME):
        rrn("collective", "join", proposal, "--home", net.home(k))
    wait(
        "the joins reaching Orbit",
        lambda: _shown(net, ORBIT, proposal)["joined_by_role"] == {"company": 1, "embassy": 1},
    )
    say(rrn("collective", "show", proposal, "--home", net.home(ORBIT)).split("\n\n")[0])
    step(f"{net.org(ORBIT)} joins: the threshold is met, and every joiner is bound at once:")
    rrn("collective", "join", proposal, "--home", net.home(ORBIT))
    for k in JOINERS:
        wait(f"{net.org(k)}'s pager", functools.partial(_told, net, k))
    met_ms = int(str(_shown(net, 1, proposal)["met_ms"]))
    for k in JOINERS:
        notice = _met_notice(net, k) or {}
        later = int(notice["at_ms"]) - met_ms
        say(f"  {net.org(k):<14} pager, {later:4d} ms after the last join was signed: bound "
            f"with {', '.join(m for m in notice['members'] if m != net.org(k))}")  # fmt: skip
    step("Each signs the letter as proposed; Lima prints it with its signatories, for the")
    say("   organisations to send through their own channels (rrn sends nothing outside):")
    for k in JOINERS:
        rrn("collective", "sign", proposal, "--home", net.home(k), show=False)
    wait("the signatures at Lima", lambda: _signed(net, proposal) == len(JOINERS))
    say(rrn("collective", "show", proposal, "--home", net.home(1)).rstrip())


def _met_notice(net: Net, k: int) -> dict[str, Any] | None:
    """The `collective` notice (reason `met`) member k's pager got, if any."""
    pages = net.pages(k)
    lines = pages.read_text().splitlines() if pages.exists() else []
    found = [json.loads(line) for line in lines if line.strip()]
    return next((n for n in found if n["type"] == "collective" and n["reason"] == "met"), None)


def _told(net: Net, k: int) -> bool:
    return _met_notice(net, k) is not None


def _held(net: Net, k: int, proposal: str) -> bool:
    listed = rrn_json("collective", "list", "--home", net.home(k))
    return any(p["proposal"].startswith(proposal) for p in listed)


def _shown(net: Net, k: int, proposal: str) -> dict[str, object]:
    return dict(rrn_json("collective", "show", proposal, "--home", net.home(k)))


def _signed(net: Net, proposal: str) -> int:
    signatures = _shown(net, 1, proposal)["signatures"]
    assert isinstance(signatures, dict)
    return max((len(v) for v in signatures.values()), default=0)
