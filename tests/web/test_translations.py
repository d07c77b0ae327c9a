"""The catalogs: every string of the portal is translated in every language offered."""

import re
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ctcp.web import i18n

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> set[str]:
    """What `scripts/translations update` would extract, read from the sources now."""
    method_map = [
        ("ctcp/**.py", "python"),
        ("ctcp/web/templates/**.html", "jinja2"),
    ]
    options = {
        "ctcp/web/templates/**.html": {
            "extensions": "jinja2.ext.i18n",
            "trim_blocks": "True",
            "lstrip_blocks": "True",
        }
    }
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    messages: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "platform"), method_map, options, keywords=keywords
    ):
        messages.add(message[0] if isinstance(message, tuple) else message)
    return {message for message in messages if message}


def _catalog(locale: str) -> Catalog:
    path = i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    return read_po(BytesIO(path.read_bytes()), locale=locale)


def test_every_offered_language_translates_every_string() -> None:
    extracted = _extracted()
    assert len(extracted) > 100
    for locale in i18n.LANGUAGES:
        if locale == i18n.DEFAULT_LOCALE:
            continue
        catalog = _catalog(locale)
        missing = sorted(
            message
            for message in extracted
            if (entry := catalog.get(message)) is None
            or entry.fuzzy
            or not (entry.string if isinstance(entry.string, str) else all(entry.string))
        )
        assert missing == [], f"{locale}: {len(missing)} untranslated, e.g. {missing[:5]}"


def test_translations_keep_their_placeholders() -> None:
    for locale in i18n.LANGUAGES:
        if locale == i18n.DEFAULT_LOCALE:
            continue
        for entry in _catalog(locale):
            if not entry.id:
                continue
            ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            wanted = set(PLACEHOLDER.findall(ids[-1]))
            for string in strings:
                assert set(PLACEHOLDER.findall(string)) <= wanted | {"num"}, (entry.id, string)
                assert wanted - {"num"} <= set(PLACEHOLDER.findall(string)), (entry.id, string)
