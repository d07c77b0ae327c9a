"""Activities in open formats: CSV, HXL-tagged CSV (the Humanitarian Exchange Language's
hashtag row under the header) and IATI activity XML 2.03.

States are named and coded by ISO 3166-1 (alpha-3 in the CSVs, alpha-2 in IATI, which
uses the ISO 3166-1 alpha-2 code list for recipient countries). Cells that a spreadsheet
would read as a formula are neutralised, as in every CSV the platform writes.
"""

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from xml.etree import ElementTree as ET

import pycountry

from ctcp.core.clock import clock
from ctcp.planning.schemas import ActivityRead

# One column per field: (header, HXL hashtag).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "#activity+id"),
    ("title", "#activity+name"),
    ("lead", "#org+lead+code"),
    ("lead_name", "#org+lead+name"),
    ("partners", "#org+partner+code"),
    ("state", "#country+code"),
    ("state_name", "#country+name"),
    ("area", "#sector+code"),
    ("programme", "#activity+programme"),
    ("kind", "#activity+type"),
    ("status", "#status"),
    ("starts_on", "#date+start"),
    ("ends_on", "#date+end"),
    ("budget", "#value+budget"),
    ("currency", "#currency"),
    ("need_ids", "#indicator+need+id"),
    ("offer_id", "#activity+offer+id"),
)
# What the HXL standard's core hashtags say for each field the issue names.
HXL_REQUIRED = ("#org", "#country+code", "#sector", "#activity", "#status", "#date+start")

IATI_VERSION = "2.03"
# IATI ActivityStatus codelist: 1 pipeline/identification, 2 implementation, 4 closed,
# 5 cancelled.
IATI_STATUS = {"planned": "1", "ongoing": "2", "completed": "4", "cancelled": "5"}
# IATI ActivityDateType: 1 planned start, 2 actual start, 3 planned end, 4 actual end.
IATI_START = {"planned": "1", "ongoing": "2", "completed": "2", "cancelled": "1"}
IATI_END = {"planned": "3", "ongoing": "3", "completed": "4", "cancelled": "3"}
# IATI OrganisationType 40: multilateral; OrganisationRole 1 funding, 4 implementing.
MULTILATERAL = "40"
ROLE_FUNDING, ROLE_IMPLEMENTING = "1", "4"
# IATI SectorVocabulary 99: the reporting organisation's own codes (the thematic areas).
OWN_SECTOR_VOCABULARY = "99"
# The prefix of the organisation identifiers the platform writes: its own codes, under a
# private registration agency (IATI's XI-* prefixes are reserved to IATI itself).
ORG_PREFIX = "XM-CTCP-"


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet reads as text, never as a formula."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


@cache
def _country(alpha_3: str) -> tuple[str | None, str]:
    """(ISO 3166-1 alpha-2, ISO 3166-1 English short name) of an alpha-3 code."""
    country = pycountry.countries.get(alpha_3=alpha_3)
    if country is None:
        return None, alpha_3
    return country.alpha_2, country.name


def _row(activity: ActivityRead) -> list[str]:
    values: dict[str, object] = {
        "id": activity.id,
        "title": activity.title,
        "lead": activity.lead.code,
        "lead_name": activity.lead.name,
        "partners": " ".join(partner.code for partner in activity.partners),
        "state": activity.state.code,
        "state_name": _country(activity.state.code)[1],
        "area": activity.area,
        "programme": activity.programme,
        "kind": activity.kind,
        "status": activity.status,
        "starts_on": activity.starts_on.isoformat(),
        "ends_on": activity.ends_on.isoformat() if activity.ends_on else None,
        "budget": activity.budget,
        "currency": activity.currency,
        "need_ids": " ".join(str(need) for need in activity.need_ids),
        "offer_id": activity.offer_id,
    }
    return [_cell(values[name]) for name, _ in COLUMNS]


def to_csv(activities: Sequence[ActivityRead]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS])
    writer.writerows(_row(activity) for activity in activities)
    return out.getvalue()


def to_hxl(activities: Sequence[ActivityRead]) -> str:
    """The CSV with HXL's hashtag row right under the header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS])
    writer.writerow([tag for _, tag in COLUMNS])
    writer.writerows(_row(activity) for activity in activities)
    return out.getvalue()


def _narrative(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "narrative").text = text


def _org(parent: ET.Element, name: str, code: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, name, {"ref": ORG_PREFIX + code, **attributes})
    return element


def _iati_activity(root: ET.Element, activity: ActivityRead) -> None:
    element = ET.SubElement(
        root,
        "iati-activity",
        {
            "last-updated-datetime": _stamp(activity.updated_at),
            "{http://www.w3.org/XML/1998/namespace}lang": "en",
            **({"default-currency": activity.currency} if activity.currency else {}),
        },
    )
    # Elements in the schema's order (iati-activities-schema.xsd 2.03).
    ET.SubElement(
        element, "iati-identifier"
    ).text = f"{ORG_PREFIX}{activity.lead.code}-{activity.id}"
    reporting = _org(element, "reporting-org", activity.lead.code, type=MULTILATERAL)
    _narrative(reporting, activity.lead.name)
    _narrative(ET.SubElement(element, "title"), activity.title)
    _narrative(ET.SubElement(element, "description", type="1"), activity.description)
    lead = _org(
        element, "participating-org", activity.lead.code, role=ROLE_IMPLEMENTING, type=MULTILATERAL
    )
    _narrative(lead, activity.lead.name)
    for partner in activity.partners:
        org = _org(
            element, "participating-org", partner.code, role=ROLE_IMPLEMENTING, type=MULTILATERAL
        )
        _narrative(org, partner.name)
    ET.SubElement(element, "activity-status", code=IATI_STATUS[activity.status])
    ET.SubElement(
        element,
        "activity-date",
        {"iso-date": activity.starts_on.isoformat(), "type": IATI_START[activity.status]},
    )
    if activity.ends_on is not None:
        ET.SubElement(
            element,
            "activity-date",
            {"iso-date": activity.ends_on.isoformat(), "type": IATI_END[activity.status]},
        )
    alpha_2, name = _country(activity.state.code)
    if alpha_2 is not None:
        country = ET.SubElement(element, "recipient-country", code=alpha_2, percentage="100")
        _narrative(country, name)
    sector = ET.SubElement(
        element,
        "sector",
        vocabulary=OWN_SECTOR_VOCABULARY,
        code=activity.area,
        percentage="100",
    )
    _narrative(sector, activity.area.replace("_", " "))
    if activity.budget is not None and activity.currency is not None:
        budget = ET.SubElement(element, "budget", type="1", status="1")
        ET.SubElement(budget, "period-start", {"iso-date": activity.starts_on.isoformat()})
        ET.SubElement(
            budget,
            "period-end",
            # IATI budgets cover a year at most: an open-ended activity's first year.
            {"iso-date": (activity.ends_on or _year_on(activity.starts_on)).isoformat()},
        )
        value = ET.SubElement(
            budget,
            "value",
            {"currency": activity.currency, "value-date": activity.starts_on.isoformat()},
        )
        value.text = f"{activity.budget:.2f}"


def _year_on(start: date) -> date:
    return start + timedelta(days=364)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_iati(activities: Sequence[ActivityRead]) -> str:
    """IATI activity XML 2.03: one `iati-activity` per activity, reported by its lead."""
    now = clock.now()
    root = ET.Element(
        "iati-activities", {"version": IATI_VERSION, "generated-datetime": _stamp(now)}
    )
    for activity in activities:
        _iati_activity(root, activity)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
