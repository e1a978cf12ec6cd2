"""The console's languages: message catalogues, templates, dates and places per language.

Owns turning node/console/locale/<lang>/LC_MESSAGES/console.po (gettext catalogues,
edited with any PO editor; `make catalogues` extracts new messages with Babel) into
one Jinja2 environment per language, and the Babel formatting of times in a
person's zone. English is the source language: its messages are the msgids.
"""

from __future__ import annotations

import datetime
import gettext
import io
import zoneinfo
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from rrn.node.console.people import LANGUAGES

__all__ = ["Language", "formatter", "languages", "short", "when"]

_HERE: Final = Path(__file__).parent
LOCALE_DIR: Final = _HERE / "locale"
TEMPLATES: Final = _HERE / "templates"


def _translations(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "console.po"
    if lang == "en" or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


class Language:
    """One language: its templates, gettext and Babel locale."""

    def __init__(self, code: str):
        self.code = code
        self.locale = Locale.parse(code)
        self.tr = _translations(code)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(self.tr, newstyle=True)  # type: ignore[attr-defined]
        env.globals["lang"] = code
        self.env = env

    def gettext(self, message: str, **values: Any) -> str:
        text = self.tr.gettext(message)
        return text % values if values else text

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def country(self, code: str) -> str:
        return str(self.locale.territories.get(code, code))

    def language(self, code: str) -> str:
        return str(self.locale.languages.get(code, code))


@cache
def languages() -> dict[str, Language]:
    return {code: Language(code) for code in LANGUAGES}


def when(lang: Language, ms: int, tz: str, *, now_ms: int | None = None) -> str:
    """A time in a zone, in a language's words ("2 Dec 2026, 03:12 (in 4 minutes)").
    A signed time beyond what a calendar holds (valid up to 2^53 - 1) shows as a number."""
    zone = zoneinfo.ZoneInfo(tz)
    try:
        at = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).astimezone(zone)
    except (ValueError, OverflowError, OSError):
        return f"{ms} ms"
    text = format_datetime(at, "medium", tzinfo=zone, locale=lang.locale)
    if now_ms is None:
        return text
    delta = datetime.timedelta(milliseconds=ms - now_ms)
    rel = format_timedelta(delta, add_direction=True, locale=lang.locale, threshold=1.5)
    return f"{text} ({rel})"


def short(lang: Language, ms: int, tz: str) -> str:
    """A grid heading: weekday and hour ("Wed 14:00")."""
    zone = zoneinfo.ZoneInfo(tz)
    at = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).astimezone(zone)
    return str(format_datetime(at, "EEE HH:mm", tzinfo=zone, locale=lang.locale))


def formatter(lang: Language, tz: str, now_ms: int) -> Callable[[int | None], str]:
    """A template filter: milliseconds to a time in the reader's zone."""

    def fmt(ms: int | None) -> str:
        return "" if ms is None else when(lang, ms, tz, now_ms=now_ms)

    return fmt
