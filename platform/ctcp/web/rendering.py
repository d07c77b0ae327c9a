"""The portal's templates: one Jinja environment per language, gettext inside."""

from functools import cache
from pathlib import Path

import jinja2

from ctcp.web import i18n
from ctcp.web.labels import LABELS

TEMPLATES_DIR = Path(__file__).parent / "templates"


@cache
def environment_for(locale: str) -> jinja2.Environment:
    """The templates in one language (gettext in templates: `{{ _("Reports") }}`)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = i18n.translations(locale)
    environment.install_gettext_translations(  # type: ignore[attr-defined]
        translations, newstyle=True
    )

    def label_of(code: object) -> str:
        """`{{ roles | map("label_of") }}`: coded values as words, for lists."""
        text = LABELS.get(str(code))
        return str(translations.gettext(text)) if text else str(code).replace("_", " ")

    environment.filters["label_of"] = label_of
    return environment
