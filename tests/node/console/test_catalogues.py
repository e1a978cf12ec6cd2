"""The console's message catalogues (node/console/locale/) keep up with its sources.

Every message the console can show (templates, Python, vocab.py's N_ labels) is
extracted exactly as `make catalogues` does, with Babel and node/console/babel.cfg,
and must have a real (non-empty, non-fuzzy) translation in every language of the
console, with the same placeholders as the English; console.pot must be what the
sources say today. When one of these fails: run `make catalogues`, then translate
what is new in each node/console/locale/<lang>/LC_MESSAGES/console.po.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from rrn.node.console.i18n import languages
from rrn.node.console.people import LANGUAGES

CONSOLE = Path(__file__).resolve().parents[3] / "node" / "console"
LOCALE = CONSOLE / "locale"
#: What `make catalogues` extracts with: Babel's default keywords (gettext, _, ...) and N_.
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
#: English is the source language: its messages are the msgids.
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
FIX = (
    "run `make catalogues`, then translate the new messages in "
    "node/console/locale/<lang>/LC_MESSAGES/console.po"
)
#: A printf-style conversion as Python's % operator reads it: %(name)s, %d, %%.
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[#0 +-]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]")

Key = tuple[str, str | None]  # msgid, context


@cache
def extracted() -> frozenset[Key]:
    """The msgids (and contexts) in the console's sources today."""
    cfg = CONSOLE / "babel.cfg"
    with cfg.open() as f:
        method_map, options_map = parse_mapping_cfg(f, str(cfg))  # type: ignore[no-untyped-call]
    found: set[Key] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        CONSOLE, method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            found.add((msgid, context))
    assert found, "nothing extracted from node/console: is babel.cfg right?"
    return frozenset(found)


def read(path: Path, lang: str | None = None) -> Catalog:
    assert path.is_file(), f"{path.relative_to(CONSOLE.parent.parent)} is missing: {FIX}"
    with path.open("rb") as f:
        return read_po(f, locale=lang)


@cache
def catalogue(lang: str) -> Catalog:
    return read(LOCALE / lang / "LC_MESSAGES" / "console.po", lang)


def keys(catalog: Catalog) -> set[Key]:
    return {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in catalog if m.id}


def strings(message: Message) -> list[str]:
    """A message's translation, or each of its plural forms."""
    s = message.string
    if s is None or isinstance(s, str):
        return [s or ""]
    return [x or "" for x in s]


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def listed(keys: set[Key] | list[Key]) -> str:
    lines = [f"  {msgid!r}" + (f" (context {ctx!r})" if ctx else "") for msgid, ctx in keys]
    return "\n".join(sorted(lines)) or "  (none)"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_has_a_translation(lang: str) -> None:
    cat = catalogue(lang)
    missing: list[Key] = []
    for msgid, ctx in sorted(extracted(), key=str):
        m = cat.get(msgid, ctx)
        if m is None or m.fuzzy or not all(s.strip() for s in strings(m)):
            missing.append((msgid, ctx))
    assert not missing, (
        f"{lang}: {len(missing)} of {len(extracted())} messages have no translation"
        f" (or only a fuzzy one): {FIX}\n{listed(missing)}"
    )


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_the_placeholders_of_their_message(lang: str) -> None:
    wrong = []
    for m in catalogue(lang):
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        # A plural form may drop the count, as the English singular may.
        allowed = [placeholders(i) for i in ids]
        for s in strings(m):
            if s and placeholders(s) not in allowed:
                want = " or ".join(map(str, allowed))
                wrong.append(f"  {ids[0]!r}\n    -> {s!r}\n    has {placeholders(s)}, not {want}")
    assert not wrong, (
        f"{lang}: translations whose placeholders differ from the English:\n" + "\n".join(wrong)
    )


def test_the_template_and_the_catalogues_have_what_the_sources_say() -> None:
    pot = keys(read(LOCALE / "console.pot"))
    now = set(extracted())
    assert pot == now, (
        f"node/console/locale/console.pot is out of date: {FIX}\n"
        f"new in the sources:\n{listed(now - pot)}\ngone from the sources:\n{listed(pot - now)}"
    )
    for lang in TRANSLATED:
        stale = keys(catalogue(lang)) - now
        assert not stale, (
            f"{lang}: console.po keeps messages the sources no longer have: {FIX}\n{listed(stale)}"
        )


@pytest.mark.parametrize("lang", TRANSLATED)
def test_each_language_renders_its_translations(lang: str) -> None:
    language = languages()[lang]
    inbox = catalogue(lang).get("Inbox")
    assert inbox is not None and inbox.string
    assert language.gettext("Inbox") == inbox.string != "Inbox"
    level = catalogue(lang).get("Escalation level %(level)d")
    assert level is not None and isinstance(level.string, str)
    assert language.gettext("Escalation level %(level)d", level=2) == level.string % {"level": 2}
    # The templates' _() is Jinja2's newstyle gettext over the same catalogue, autoescaped.
    page = language.env.from_string(
        '{{ _("Inbox") }}|{{ _("Escalation level %(level)d", level=2) }}'
    )
    assert page.render() == f"{inbox.string}|{level.string % {'level': 2}}"


def test_english_is_the_source_language() -> None:
    english = languages()["en"]
    assert english.gettext("Inbox") == "Inbox"
    assert english.gettext("Escalation level %(level)d", level=3) == "Escalation level 3"
