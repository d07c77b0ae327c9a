"""The open exports of joint planning: CSV, HXL-tagged CSV and IATI activity XML 2.03,
each holding exactly the activities the caller may read, each parsed back here by the
reader its users would use (the csv module, libhxl, an XML parser)."""

import csv
import io
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import hxl  # type: ignore[import-untyped]
import pytest

from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization
from ctcp.planning import service
from ctcp.planning.exchange import COLUMNS, HXL_REQUIRED, ORG_PREFIX
from ctcp.planning.models import Activity
from tests.assistance.conftest import Assist
from tests.factories import make_org
from tests.planning.conftest import create_activity, details_of, events_of

HEADER = [name for name, _ in COLUMNS]
# The children of iati-activity in the order iati-activities-schema.xsd 2.03 sets.
IATI_ORDER = (
    "iati-identifier",
    "reporting-org",
    "title",
    "description",
    "participating-org",
    "other-identifier",
    "activity-status",
    "activity-date",
    "contact-info",
    "activity-scope",
    "recipient-country",
    "recipient-region",
    "location",
    "sector",
    "tag",
    "country-budget-items",
    "humanitarian-scope",
    "policy-marker",
    "collaboration-type",
    "default-flow-type",
    "default-finance-type",
    "default-aid-type",
    "default-tied-status",
    "budget",
    "planned-disbursement",
    "capital-spend",
    "transaction",
    "document-link",
    "related-activity",
    "legacy-data",
    "conditions",
    "result",
    "crs-add",
    "fss",
)
# What the schema requires of every iati-activity.
IATI_REQUIRED = (
    "iati-identifier",
    "reporting-org",
    "title",
    "description",
    "participating-org",
    "activity-status",
    "activity-date",
)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


async def member_state(database: Database, code: str, name: str) -> Organization:
    """A State with its real ISO 3166-1 alpha-3 code: the one this database holds, or a
    new one (codes are unique, and the database outlives the test)."""
    async with database.sessionmaker() as session:
        found = await organizations.organization_by_code(session, code)
    return found or await make_org(database, code=code, name=name)


async def export(client: httpx.AsyncClient, format: str, **params: Any) -> httpx.Response:
    response = await client.get("/api/v1/activities/export", params={"format": format} | params)
    assert response.status_code == 200, response.text
    return response


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


def hxl_of(response: httpx.Response) -> hxl.model.Dataset:
    return hxl.data(io.BytesIO(response.content), hxl.InputOptions(encoding="utf-8"))


def iati_of(response: httpx.Response) -> dict[str, ET.Element]:
    """The iati-activity elements of the file, by activity id (the identifier's end)."""
    # The platform's own output under test, not untrusted input.
    root = ET.fromstring(response.content)  # noqa: S314
    assert root.tag == "iati-activities"
    assert root.get("version") == "2.03"
    return {
        _text(activity, "iati-identifier")[-36:]: activity
        for activity in root.findall("iati-activity")
    }


def _text(element: ET.Element, path: str) -> str:
    found = element.find(path)
    assert found is not None and found.text is not None, path
    return found.text


def _one(element: ET.Element, path: str) -> ET.Element:
    [found] = element.findall(path)
    return found


# --- CSV --------------------------------------------------------------------------------


async def test_csv_has_the_documented_header_and_one_row_per_readable_activity(
    assist: Assist,
) -> None:
    # A need the State shares, so that its lead sees the activity's tie to it.
    await assist.share_needs()
    need = await assist.need()
    full = await create_activity(
        assist,
        "analyst",
        lead=assist.entity.code,
        partners=[assist.other_entity.code],
        need_ids=[need["id"]],
        programme="countering_terrorist_travel",
        kind="training",
        budget="12500",
        currency="eur",
    )
    bare = await create_activity(assist, starts_on="2027-03-01", ends_on=None)
    response = await export(assist["entity"], "csv", state=assist.state.code)

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="activities.csv"'
    assert next(csv.reader(io.StringIO(response.text))) == HEADER
    rows = rows_of(response)
    # By start date within the State: one row each, nothing else.
    assert [row["id"] for row in rows] == [full["id"], bare["id"]]
    assert rows[0] == {
        "id": full["id"],
        "title": "Border management training",
        "lead": assist.entity.code,
        "lead_name": assist.entity.name_en,
        "partners": assist.other_entity.code,
        "state": assist.state.code,
        # A code ISO 3166 does not know keeps the platform's name.
        "state_name": assist.state.name_en,
        "area": "border_management",
        "programme": "countering_terrorist_travel",
        "kind": "training",
        "status": "planned",
        "starts_on": "2027-01-01",
        "ends_on": "2027-06-30",
        "budget": "12500.00",
        "currency": "EUR",
        "need_ids": need["id"],
        "offer_id": "",
        # The State shares the need: the Compact's marking.
        "audience": "compact",
        "tlp": "TLP:AMBER",
    }
    empty = ("partners", "programme", "ends_on", "budget", "currency", "need_ids", "offer_id")
    assert {name: rows[1][name] for name in empty} == dict.fromkeys(empty, "")
    assert (rows[1]["kind"], rows[1]["starts_on"]) == ("other", "2027-03-01")


async def test_iso_states_are_named_by_iso_3166(assist: Assist) -> None:
    ivory_coast = await member_state(assist.database, "CIV", "Ivory Coast")
    made = await create_activity(assist, state=ivory_coast)
    rows = rows_of(await export(assist["entity"], "csv", state="CIV", lead=assist.entity.code))
    [row] = [row for row in rows if row["id"] == made["id"]]
    assert (row["state"], row["state_name"]) == ("CIV", "Côte d'Ivoire")


async def test_formula_cells_are_neutralised_in_both_csvs_and_kept_in_iati(
    assist: Assist,
) -> None:
    titles = (
        '=HYPERLINK("https://evil.example","Click")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)",
    )
    made = {title: (await create_activity(assist, title=title))["id"] for title in titles}
    for format in ("csv", "hxl"):
        response = await export(assist["entity"], format, state=assist.state.code)
        rows = {row["id"]: row for row in rows_of(response)}
        for title, activity_id in made.items():
            assert rows[activity_id]["title"] == "'" + title, format
    # XML has no formulas: the title stays as written.
    activities = iati_of(await export(assist["entity"], "iati", state=assist.state.code))
    for title, activity_id in made.items():
        assert _text(activities[activity_id], "title/narrative") == title


# --- HXL --------------------------------------------------------------------------------


async def test_hxl_tags_sit_on_their_columns_and_libhxl_reads_the_values(
    assist: Assist,
) -> None:
    made = await create_activity(
        assist, partners=[assist.other_entity.code], budget="900.50", currency="USD"
    )
    response = await export(assist["entity"], "hxl", state=assist.state.code)
    assert response.headers["content-disposition"] == 'attachment; filename="activities-hxl.csv"'

    dataset = hxl_of(response)
    assert [column.header for column in dataset.columns] == HEADER
    assert [column.display_tag for column in dataset.columns] == [tag for _, tag in COLUMNS]
    for tag in HXL_REQUIRED:
        pattern = hxl.TagPattern.parse(tag)
        assert any(pattern.match(column) for column in dataset.columns), tag
    by_header = {column.header: column for column in dataset.columns}
    assert str(by_header["lead"].tag) == "#org"
    assert by_header["state"].display_tag == "#country+code"
    assert str(by_header["area"].tag) == "#sector"
    assert str(by_header["title"].tag) == "#activity"
    assert by_header["status"].display_tag == "#status"
    assert by_header["starts_on"].display_tag == "#date+start"
    assert by_header["ends_on"].display_tag == "#date+end"

    [row] = list(dataset)
    assert row.get("#activity+id") == made["id"]
    assert row.get("#activity+name") == "Border management training"
    assert row.get("#org+lead+code") == assist.entity.code
    assert row.get("#org+partner+code") == assist.other_entity.code
    assert row.get("#country+code") == assist.state.code
    assert row.get("#sector") == "border_management"
    assert row.get("#status") == "planned"
    assert row.get("#date+start") == "2027-01-01"
    assert row.get("#date+end") == "2027-06-30"
    assert row.get("#value+budget") == "900.50"
    assert row.get("#currency") == "USD"
    # HXL's own checks (dates are dates, values are numbers) find no error.
    report = hxl.validate(hxl_of(response))
    assert report["stats"]["error"] == 0, report


# --- IATI -------------------------------------------------------------------------------


async def test_iati_is_well_formed_in_schema_order_with_codes_from_the_codelists(
    assist: Assist,
) -> None:
    kenya = await member_state(assist.database, "KEN", "Kenya")
    today = clock.now().date()
    past, later = today - timedelta(days=30), today + timedelta(days=90)
    made = {
        "planned": await create_activity(
            assist,
            state=kenya,
            partners=[assist.other_entity.code],
            starts_on=later.isoformat(),
            ends_on=(later + timedelta(days=60)).isoformat(),
        ),
        "ongoing": await create_activity(
            assist,
            state=kenya,
            status="ongoing",
            starts_on=past.isoformat(),
            ends_on=None,
            budget="5000",
            currency="EUR",
        ),
        "completed": await create_activity(
            assist,
            state=kenya,
            status="completed",
            starts_on=(past - timedelta(days=60)).isoformat(),
            ends_on=past.isoformat(),
        ),
        "cancelled": await create_activity(
            assist,
            state=kenya,
            status="cancelled",
            starts_on=later.isoformat(),
            ends_on=(later + timedelta(days=1)).isoformat(),
        ),
    }
    response = await export(assist["entity"], "iati", state="KEN", lead=assist.entity.code)
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="activities.xml"'
    activities = iati_of(response)
    assert set(activities) == {activity["id"] for activity in made.values()}

    lead_ref = ORG_PREFIX + assist.entity.code
    for status, activity in made.items():
        element = activities[activity["id"]]
        tags = [child.tag for child in element]
        positions = [IATI_ORDER.index(tag) for tag in tags]
        assert positions == sorted(positions), (status, tags)
        assert set(IATI_REQUIRED) <= set(tags), (status, tags)
        assert element.get(XML_LANG) == "en"
        # The identifier starts with the reporting organisation's.
        reporting = _one(element, "reporting-org")
        assert reporting.get("ref") == lead_ref
        assert reporting.get("type") == "40"
        assert _text(element, "iati-identifier") == f"{lead_ref}-{activity['id']}"
        assert _text(element, "title/narrative") == "Border management training"
        assert _text(element, "description/narrative") == "Training of border guards on API/PNR."
        # ISO 3166-1 alpha-2 for the recipient country.
        country = _one(element, "recipient-country")
        assert (country.get("code"), country.get("percentage")) == ("KE", "100")
        assert _text(country, "narrative") == "Kenya"
        sector = _one(element, "sector")
        assert (sector.get("vocabulary"), sector.get("code")) == ("99", "border_management")
        assert _text(sector, "narrative") == "border management"

    status_codes = {
        status: _one(activities[a["id"]], "activity-status").get("code")
        for status, a in made.items()
    }
    assert status_codes == {"planned": "1", "ongoing": "2", "completed": "4", "cancelled": "5"}

    def dates(status: str) -> list[tuple[str | None, str | None]]:
        return [
            (d.get("type"), d.get("iso-date"))
            for d in activities[made[status]["id"]].findall("activity-date")
        ]

    # Planned start and end (1, 3); actual ones (2, 4) only for what has happened.
    assert dates("planned") == [
        ("1", later.isoformat()),
        ("3", (later + timedelta(days=60)).isoformat()),
    ]
    assert dates("ongoing") == [("2", past.isoformat())]
    assert dates("completed") == [
        ("2", (past - timedelta(days=60)).isoformat()),
        ("4", past.isoformat()),
    ]
    assert dates("cancelled")[0] == ("1", later.isoformat())
    # An open-ended activity's budget is read as its first year's.
    [(start, end, value, _)] = _budgets(activities[made["ongoing"]["id"]])
    assert (start, value) == (past, Decimal("5000.00"))
    assert 364 <= (end - start).days <= 365

    # The lead and each partner take part as implementing multilaterals.
    participants = [
        (org.get("ref"), org.get("role"), org.get("type"), _text(org, "narrative"))
        for org in activities[made["planned"]["id"]].findall("participating-org")
    ]
    assert participants == [
        (lead_ref, "4", "40", assist.entity.name_en),
        (ORG_PREFIX + assist.other_entity.code, "4", "40", assist.other_entity.name_en),
    ]


async def test_iati_of_a_state_iso_3166_does_not_know_names_no_recipient_country(
    assist: Assist,
) -> None:
    made = await create_activity(assist)
    activities = iati_of(await export(assist["entity"], "iati", state=assist.state.code))
    assert activities[made["id"]].find("recipient-country") is None


async def test_an_actual_date_in_the_future_is_reported_as_planned(assist: Assist) -> None:
    """IATI refuses actual dates in the future: a status ahead of its dates keeps them
    planned."""
    today = clock.now().date()
    soon = today + timedelta(days=10)
    made = await create_activity(
        assist,
        status="completed",
        starts_on=soon.isoformat(),
        ends_on=(soon + timedelta(days=5)).isoformat(),
    )
    activities = iati_of(await export(assist["entity"], "iati", state=assist.state.code))
    assert [d.get("type") for d in activities[made["id"]].findall("activity-date")] == ["1", "3"]


def _budgets(element: ET.Element) -> list[tuple[date, date, Decimal, dict[str, str]]]:
    found = []
    for budget in element.findall("budget"):
        assert [child.tag for child in budget] == ["period-start", "period-end", "value"]
        assert (budget.get("type"), budget.get("status")) == ("1", "1")
        value = _one(budget, "value")
        found.append(
            (
                date.fromisoformat(_one(budget, "period-start").get("iso-date") or ""),
                date.fromisoformat(_one(budget, "period-end").get("iso-date") or ""),
                Decimal(value.text or ""),
                dict(value.attrib),
            )
        )
    return found


async def test_iati_budget_carries_value_currency_and_periods_of_a_year_at_most(
    assist: Assist,
) -> None:
    short = await create_activity(assist, budget="12500", currency="EUR")
    long = await create_activity(
        assist,
        starts_on="2027-03-01",
        ends_on="2029-06-30",
        budget="100000.01",
        currency="USD",
    )
    unfunded = await create_activity(assist)
    activities = iati_of(await export(assist["entity"], "iati", state=assist.state.code))

    assert activities[short["id"]].get("default-currency") == "EUR"
    assert _budgets(activities[short["id"]]) == [
        (
            date(2027, 1, 1),
            date(2027, 6, 30),
            Decimal("12500.00"),
            {"currency": "EUR", "value-date": "2027-01-01"},
        )
    ]
    assert activities[unfunded["id"]].find("budget") is None
    assert activities[unfunded["id"]].get("default-currency") is None

    # Two years and four months: three periods, back to back, none over a year, the
    # value spread by days and adding up to the total to the cent.
    periods = _budgets(activities[long["id"]])
    assert [(start, end) for start, end, _, _ in periods] == [
        (date(2027, 3, 1), date(2028, 2, 29)),
        (date(2028, 3, 1), date(2029, 2, 28)),
        (date(2029, 3, 1), date(2029, 6, 30)),
    ]
    assert sum(value for _, _, value, _ in periods) == Decimal("100000.01")
    total_days = (date(2029, 6, 30) - date(2027, 3, 1)).days + 1
    for start, end, value, attributes in periods:
        share = Decimal("100000.01") * ((end - start).days + 1) / total_days
        assert abs(value - share) < Decimal("0.02"), (start, value, share)
        assert attributes == {"currency": "USD", "value-date": start.isoformat()}


async def test_text_xml_cannot_carry_is_dropped_so_the_file_still_parses(
    assist: Assist,
) -> None:
    """The API refuses control characters in an activity's title, but an activity planned
    from an offer takes the title of the State's request, held to no such rule: the file
    must parse whatever the database holds."""
    made = await create_activity(assist)
    async with assist.database.transaction() as session:
        activity = await session.get(Activity, uuid.UUID(made["id"]))
        assert activity is not None
        activity.title = "Border <management> & training\x0b phase\x01 1"
        activity.description = 'Guards "trained" \x1b at the border.'
        session.add(activity)
    activities = iati_of(await export(assist["entity"], "iati", state=assist.state.code))
    element = activities[made["id"]]
    assert _text(element, "title/narrative") == "Border <management> & training phase 1"
    assert _text(element, "description/narrative") == 'Guards "trained"  at the border.'


# --- scope, audit, bounds ---------------------------------------------------------------


def _exported_ids(response: httpx.Response, format: str) -> set[str]:
    if format == "iati":
        return set(iati_of(response))
    if format == "hxl":
        return {str(row.get("#activity+id")) for row in hxl_of(response)}
    return {row["id"] for row in rows_of(response)}


@pytest.mark.parametrize("format", ["csv", "hxl", "iati"])
async def test_an_entity_exports_no_row_of_a_state_that_does_not_share(
    assist: Assist, format: str
) -> None:
    # Neither State shares its needs at first.
    stranger = await create_activity(assist, "other_entity", state=assist.other_state)
    own = await create_activity(assist, state=assist.other_state)
    elsewhere = await create_activity(assist, "other_entity")
    response = await export(assist["entity"], format)
    ids = _exported_ids(response, format)
    # The lead always sees its own; another's work in a State that does not share, never.
    assert own["id"] in ids
    assert not {stranger["id"], elsewhere["id"]} & ids
    if format == "csv":
        # Whatever else the export holds, nothing of these two States but its own work.
        for row in rows_of(response):
            if row["state"] in (assist.state.code, assist.other_state.code):
                assert row["lead"] == assist.entity.code, row

    # The State shares: its activities reach every Compact entity; the other still not.
    await assist.share_needs()
    ids = _exported_ids(await export(assist["entity"], format), format)
    assert elsewhere["id"] in ids
    assert stranger["id"] not in ids
    # A State exports its own activities only.
    state_ids = _exported_ids(await export(assist["other_state"], format), format)
    assert state_ids == {stranger["id"], own["id"]}


async def test_an_export_is_audited_with_the_ids_it_holds(assist: Assist) -> None:
    first = await create_activity(assist)
    second = await create_activity(assist, starts_on="2027-02-01")
    for format in ("csv", "hxl", "iati"):
        response = await export(assist["entity"], format, state=assist.state.code)
        [event] = [
            e for e in await events_of(assist.database, response) if e.action == "activity.export"
        ]
        assert event.outcome == "allowed"
        details = details_of(event)
        assert details["format"] == format
        assert details["count"] == 2
        assert set(details["ids"]) == {first["id"], second["id"]}
        assert set(details["ids"]) == _exported_ids(response, format)


async def test_an_export_beyond_the_bound_is_refused_not_cut_short(
    assist: Assist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_EXPORT", 2)
    for start, status in (("2027-01-01", "planned"), ("2027-02-01", "planned")):
        await create_activity(assist, starts_on=start, status=status)
    await create_activity(assist, starts_on="2027-03-01", status="ongoing")
    for format in ("csv", "hxl", "iati"):
        response = await assist["entity"].get(
            "/api/v1/activities/export", params={"format": format, "state": assist.state.code}
        )
        assert response.status_code == 422, response.text
        assert "narrow the export" in response.json()["detail"]
        events = await events_of(assist.database, response)
        assert not [e for e in events if e.action == "activity.export"]
    # Narrowed to the bound, it goes through.
    narrowed = await export(assist["entity"], "csv", state=assist.state.code, status="planned")
    assert len(rows_of(narrowed)) == 2
