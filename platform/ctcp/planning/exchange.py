"""Activities in open formats: CSV, HXL-tagged CSV (the Humanitarian Exchange Language's
hashtag row under the header) and IATI activity XML 2.03.

States are named and coded by ISO 3166-1 (alpha-3 in the CSVs, as HXL assumes for
`#country+code`; alpha-2 in IATI, whose recipient-country codelist is ISO 3166-1
alpha-2). Cells that a spreadsheet would read as a formula are neutralised, as in every
CSV the platform writes. The IATI file keeps the schema's element order and the
Standard Ruleset's checks that a writer can meet: no actual date in the future, no
budget period longer than a year.

Each activity carries its marking (docs/markings.md): the `audience` and `tlp` columns
(HXL `#meta+audience`, `#meta+tlp`), and in IATI a `tag` whose vocabulary is the
reporting organisation's own (99) pointing at FIRST's TLP 2.0 definitions, its code the
TLP label.
"""

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import cache
from xml.etree import ElementTree as ET

import pycountry

from ctcp.consent import markings
from ctcp.core.clock import clock
from ctcp.planning.models import ActivityStatus
from ctcp.planning.schemas import ActivityRead

# One column per field: (header, HXL hashtag). The attributes follow the HXL dictionary:
# `+impl` for implementing organisations, `+id` for identifiers, `+code` for codes;
# `#x_` marks a hashtag the dictionary has no word for (an offer of assistance); the
# marking goes under `#meta`, the dictionary's word for data about the data.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "#activity+id"),
    ("title", "#activity+name"),
    ("lead", "#org+impl+lead+code"),
    ("lead_name", "#org+impl+lead+name"),
    ("partners", "#org+impl+partner+code"),
    ("state", "#country+code"),
    ("state_name", "#country+name"),
    ("area", "#sector+code"),
    ("programme", "#activity+programme+code"),
    ("kind", "#activity+type"),
    ("status", "#status"),
    ("starts_on", "#date+start"),
    ("ends_on", "#date+end"),
    ("budget", "#value+budget"),
    ("currency", "#currency+code"),
    ("need_ids", "#need+id"),
    ("offer_id", "#x_offer+id"),
    ("audience", "#meta+audience"),
    ("tlp", "#meta+tlp"),
)
# The HXL hashtags the issue names, each of which some column carries.
HXL_REQUIRED = (
    "#org",
    "#country+code",
    "#sector",
    "#activity",
    "#status",
    "#date+start",
    "#date+end",
)
# What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

IATI_VERSION = "2.03"
# IATI ActivityStatus codelist: 1 pipeline/identification, 2 implementation, 4 closed,
# 5 cancelled.
IATI_STATUS = {
    ActivityStatus.PLANNED.value: "1",
    ActivityStatus.ONGOING.value: "2",
    ActivityStatus.COMPLETED.value: "4",
    ActivityStatus.CANCELLED.value: "5",
}
# IATI ActivityDateType: 1 planned start, 2 actual start, 3 planned end, 4 actual end.
PLANNED_START, ACTUAL_START, PLANNED_END, ACTUAL_END = "1", "2", "3", "4"
# The statuses whose start, and whose end, has happened (once its date has come).
STARTED = (ActivityStatus.ONGOING.value, ActivityStatus.COMPLETED.value)
ENDED = (ActivityStatus.COMPLETED.value,)
# IATI OrganisationType 40: multilateral; OrganisationRole 4: implementing.
MULTILATERAL = "40"
ROLE_IMPLEMENTING = "4"
# IATI DescriptionType 1: general.
GENERAL_DESCRIPTION = "1"
# IATI SectorVocabulary 99: the reporting organisation's own codes (the thematic areas).
OWN_SECTOR_VOCABULARY = "99"
# IATI TagVocabulary 99: the reporting organisation's own, defined at the vocabulary URI
# (here FIRST's TLP 2.0 page; the tag's code is the TLP label).
OWN_TAG_VOCABULARY = "99"
# IATI BudgetType 1: original; BudgetStatus 1: indicative (a non-binding estimate, which
# a total spread over the years of the activity is).
BUDGET_ORIGINAL, BUDGET_INDICATIVE = "1", "1"
# The prefix of the organisation identifiers the platform writes: its own codes, under a
# private registration agency (IATI's XI-* prefixes are reserved to IATI itself).
ORG_PREFIX = "XM-CTCP-"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Characters XML 1.0 cannot carry at all, even escaped: a title holding one would make
# the whole file unreadable, so they are dropped.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CENT = Decimal("0.01")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet reads as text, never as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@cache
def _country(alpha_3: str) -> tuple[str, str] | None:
    """(ISO 3166-1 alpha-2, ISO 3166-1 English short name) of an alpha-3 code."""
    country = pycountry.countries.get(alpha_3=alpha_3)
    return None if country is None else (country.alpha_2, country.name)


def _state_name(activity: ActivityRead) -> str:
    """The ISO 3166-1 name; the platform's own for a code ISO 3166 does not know."""
    found = _country(activity.state.code)
    return found[1] if found else activity.state.name


def _row(activity: ActivityRead) -> list[str]:
    values: dict[str, object] = {
        "id": activity.id,
        "title": activity.title,
        "lead": activity.lead.code,
        "lead_name": activity.lead.name,
        "partners": " ".join(partner.code for partner in activity.partners),
        "state": activity.state.code,
        "state_name": _state_name(activity),
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
        "audience": activity.audience,
        "tlp": activity.tlp.value,
    }
    return [_cell(values[name]) for name, _ in COLUMNS]


def _table(activities: Sequence[ActivityRead], *, hashtags: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS])
    if hashtags:
        writer.writerow([tag for _, tag in COLUMNS])
    writer.writerows(_row(activity) for activity in activities)
    return out.getvalue()


def to_csv(activities: Sequence[ActivityRead]) -> str:
    return _table(activities, hashtags=False)


def to_hxl(activities: Sequence[ActivityRead]) -> str:
    """The CSV with HXL's hashtag row right under the header row."""
    return _table(activities, hashtags=True)


def _narrative(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "narrative").text = NOT_XML.sub("", text)


def _org(parent: ET.Element, name: str, code: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, name, {"ref": ORG_PREFIX + code, **attributes})


def _dates(activity: ActivityRead, today: date) -> list[tuple[str, date]]:
    """(ActivityDateType, date): a start, and an end when there is one; actual only once
    the status says it happened and the day has come (IATI refuses actual dates in the
    future)."""
    started = activity.status in STARTED and activity.starts_on <= today
    dates = [(ACTUAL_START if started else PLANNED_START, activity.starts_on)]
    if activity.ends_on is not None:
        ended = activity.status in ENDED and activity.ends_on <= today
        dates.append((ACTUAL_END if ended else PLANNED_END, activity.ends_on))
    return dates


def _year_on(start: date) -> date:
    """The last day of the year that begins on `start` (29 February: to 28 February)."""
    try:
        anniversary = start.replace(year=start.year + 1)
    except ValueError:
        anniversary = date(start.year + 1, 3, 1)
    return anniversary - timedelta(days=1)


def budget_periods(start: date, end: date | None) -> list[tuple[date, date]]:
    """The activity's period cut into years from its start, the last one short: IATI
    budget periods last a year at most. An open-ended activity's budget is read as its
    first year's."""
    periods: list[tuple[date, date]] = []
    while True:
        year_end = _year_on(start)
        if end is None or year_end >= end:
            periods.append((start, year_end if end is None else end))
            return periods
        periods.append((start, year_end))
        start = year_end + timedelta(days=1)


def budget_shares(total: Decimal, periods: Sequence[tuple[date, date]]) -> list[Decimal]:
    """The total spread over the periods by their days, in cents; the last period takes
    what rounding down left, so the shares add up to the total exactly."""
    days = [(end - start).days + 1 for start, end in periods]
    shares = [(total * d / sum(days)).quantize(CENT, rounding=ROUND_DOWN) for d in days[:-1]]
    return [*shares, total - sum(shares, Decimal(0))]


def _budgets(element: ET.Element, activity: ActivityRead) -> None:
    if activity.budget is None or activity.currency is None:
        return
    periods = budget_periods(activity.starts_on, activity.ends_on)
    for (start, end), share in zip(periods, budget_shares(activity.budget, periods), strict=True):
        budget = ET.SubElement(element, "budget", type=BUDGET_ORIGINAL, status=BUDGET_INDICATIVE)
        ET.SubElement(budget, "period-start", {"iso-date": start.isoformat()})
        ET.SubElement(budget, "period-end", {"iso-date": end.isoformat()})
        value = ET.SubElement(
            budget, "value", {"currency": activity.currency, "value-date": start.isoformat()}
        )
        value.text = f"{share:.2f}"


def _iati_activity(root: ET.Element, activity: ActivityRead, today: date) -> None:
    element = ET.SubElement(
        root,
        "iati-activity",
        {
            "last-updated-datetime": _stamp(activity.updated_at),
            XML_LANG: "en",
            **({"default-currency": activity.currency} if activity.currency else {}),
        },
    )
    # Elements in the schema's order (iati-activities-schema.xsd 2.03): identifier,
    # reporting-org, title, description, participating-org, activity-status,
    # activity-date, recipient-country, sector, tag, budget.
    identifier = ET.SubElement(element, "iati-identifier")
    identifier.text = f"{ORG_PREFIX}{activity.lead.code}-{activity.id}"
    reporting = _org(element, "reporting-org", activity.lead.code, type=MULTILATERAL)
    _narrative(reporting, activity.lead.name)
    _narrative(ET.SubElement(element, "title"), activity.title)
    description = ET.SubElement(element, "description", type=GENERAL_DESCRIPTION)
    _narrative(description, activity.description)
    for organization in (activity.lead, *activity.partners):
        participant = _org(
            element,
            "participating-org",
            organization.code,
            role=ROLE_IMPLEMENTING,
            type=MULTILATERAL,
        )
        _narrative(participant, organization.name)
    ET.SubElement(element, "activity-status", code=IATI_STATUS[activity.status])
    for kind, day in _dates(activity, today):
        ET.SubElement(element, "activity-date", {"iso-date": day.isoformat(), "type": kind})
    country = _country(activity.state.code)
    if country is not None:
        alpha_2, name = country
        recipient = ET.SubElement(element, "recipient-country", code=alpha_2, percentage="100")
        _narrative(recipient, name)
    sector = ET.SubElement(
        element,
        "sector",
        vocabulary=OWN_SECTOR_VOCABULARY,
        code=activity.area,
        percentage="100",
    )
    _narrative(sector, activity.area.replace("_", " "))
    tag = ET.SubElement(
        element,
        "tag",
        {
            "vocabulary": OWN_TAG_VOCABULARY,
            "vocabulary-uri": markings.TLP_URI,
            "code": activity.tlp.value,
        },
    )
    _narrative(tag, f"{activity.tlp.value} (audience: {activity.audience})")
    _budgets(element, activity)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_iati(activities: Sequence[ActivityRead]) -> str:
    """IATI activity XML 2.03: one `iati-activity` per activity, reported by its lead."""
    now = clock.now()
    root = ET.Element(
        "iati-activities", {"version": IATI_VERSION, "generated-datetime": _stamp(now)}
    )
    for activity in activities:
        _iati_activity(root, activity, now.date())
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
