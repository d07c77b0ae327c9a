"""WCAG 2.1 AA checks that need no browser: the palette's contrast, labels, headings."""

import re

from ctcp.web import i18n

STATIC = i18n.TRANSLATIONS_DIR.parent / "static"
TEMPLATES = i18n.TRANSLATIONS_DIR.parent / "templates"
# (text, background) pairs the stylesheet puts together.
PAIRS = [
    ("ink", "paper"),
    ("ink", "wash"),
    ("muted", "paper"),
    ("muted", "wash"),
    ("accent", "paper"),
    ("accent", "wash"),
    ("accent-ink", "accent"),
    ("danger", "paper"),
    ("ok", "paper"),
    # The shades of the coordination matrix and its map, under their text and links.
    *((text, f"heat-{shade}") for text in ("ink", "accent") for shade in range(1, 5)),
]


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(first: str, second: str) -> float:
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_palette_meets_aa_contrast() -> None:
    css = (STATIC / "ctcp.css").read_text()
    palette = dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})", css))
    for text, background in PAIRS:
        ratio = _contrast(palette[text], palette[background])
        assert ratio >= 4.5, (text, background, round(ratio, 2))


def test_every_page_has_a_main_heading_and_no_inline_script_or_style() -> None:
    for template in TEMPLATES.rglob("*.html"):
        source = template.read_text()
        assert "<script" not in source, template
        assert " style=" not in source and "<style" not in source, template
        if "{% extends" in source:
            assert "<h1" in source, template


def test_every_input_has_a_label() -> None:
    """Fields are written with the macros, which label them; a bare input is a mistake."""
    for template in TEMPLATES.rglob("*.html"):
        if template.name == "_macros.html":
            continue
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", template.read_text()):
            if 'type="hidden"' in tag or 'type="submit"' in tag:
                continue
            found = re.search(r'id="([^"]+)"', tag)
            assert found, (template, tag)
            identifier = found.group(1)
            assert f'for="{identifier}"' in template.read_text() or "aria-label" in tag, (
                template,
                tag,
            )
