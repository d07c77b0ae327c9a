"""Languages of the portal: gettext catalogs (Babel), negotiation, locale formatting."""

import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations
from fastapi import Request

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en"
# The languages a user can choose. The templates are written for all six official
# languages of the United Nations (right-to-left included); a language joins this list
# when its catalog is complete.
LANGUAGES: Mapping[str, str] = {"en": "English", "fr": "Français"}
RIGHT_TO_LEFT = frozenset({"ar"})
LANGUAGE_COOKIE = "ctcp_lang"


@cache
def translations(locale: str) -> NullTranslations:
    """The catalog for a locale, compiled in memory from its .po file (no binary committed)."""
    po = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po.exists():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = pofile.read_po(source, locale=locale)
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def negotiate(request: Request) -> str:
    """The chosen language (cookie), else the browser's Accept-Language, else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen is not None and chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    preferences: list[tuple[float, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        # Earlier entries win ties: sort by quality, then by position.
        preferences.append((-quality + position * 1e-6, tag.strip().lower()))
    for _, tag in sorted(preferences):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LOCALE


def direction(locale: str) -> str:
    return "rtl" if locale in RIGHT_TO_LEFT else "ltr"


class Formatter:
    """Dates, times and numbers as the reader's locale writes them."""

    def __init__(self, locale: str) -> None:
        self.locale = Locale.parse(locale)

    def date(self, value: date | datetime | None, form: str = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(UTC).date()
        return dates.format_date(value, format=form, locale=self.locale)

    def datetime(self, value: datetime | None, form: str = "medium") -> str:
        if value is None:
            return ""
        return dates.format_datetime(value, format=form, tzinfo=UTC, locale=self.locale) + " UTC"

    def number(self, value: int | float | Decimal | None) -> str:
        if value is None:
            return ""
        return numbers.format_decimal(value, locale=self.locale)

    def money(self, value: Decimal | float | None, currency: str | None) -> str:
        if value is None:
            return ""
        if not currency:
            return self.number(value)
        return numbers.format_currency(value, currency, locale=self.locale)
