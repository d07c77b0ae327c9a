"""Exports: what the caller may list, as CSV no spreadsheet evaluates and as vCard 4.0."""

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import vobject
from fastapi import FastAPI

from ctcp.contacts.exchange import CSV_COLUMNS
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import audit_events, make_org, make_user, new_client, sign_in

AWKWARD_AUTHORITY = "Ministry of Justice, Department; International Cooperation"
AWKWARD_NOTES = "Requests by post, or e-mail; never by phone.\nEMAIL:attacker@evil.example"


@asynccontextmanager
async def signed_in(
    app: FastAPI, database: Database, role: str, org: Organization | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        await sign_in(client, (await make_user(database, org=org, roles=(role,))).email)
        yield client


async def create(client: httpx.AsyncClient, state: Organization, **changes: Any) -> dict[str, Any]:
    body = {
        "state": state.code,
        "kind": "extradition_central_authority",
        "authority": "Extradition Office",
        "email": "extradition@justice.example.org",
        "phone": "+33 1 40 00 00 00",
        "languages": ["fr", "en"],
        "audience": "member_states",
    } | changes
    created = await client.post("/api/v1/contact-points", json=body)
    assert created.status_code == 201, created.text
    entry: dict[str, Any] = created.json()
    return entry


async def export(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    response = await client.get("/api/v1/contact-points/export", params=params)
    assert response.status_code == 200, response.text
    return response


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_csv_holds_exactly_what_the_caller_may_list(app: FastAPI, database: Database) -> None:
    state, other = await make_org(database), await make_org(database)
    async with (
        signed_in(app, database, "cted_analyst") as analyst,
        signed_in(app, database, "state_focal_point", state) as focal_point,
    ):
        own = await create(analyst, state, audience="secretariat")
        shared = await create(analyst, other, audience="member_states")
        await create(analyst, other, audience="compact")
        await create(analyst, other, audience="secretariat")
        retired = await create(analyst, state)
        assert (await analyst.delete(f"/api/v1/contact-points/{retired['id']}")).status_code == 204
        exported = {}
        for code in (state.code, other.code):
            exported[code] = await export(focal_point, format="csv", state=code)
    assert [row["id"] for row in rows_of(exported[state.code])] == [own["id"]]
    assert [row["id"] for row in rows_of(exported[other.code])] == [shared["id"]]
    response = exported[state.code]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="contact-points.csv"'
    assert response.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    [row] = rows_of(response)
    assert row | {"confirmed_at": ""} == {
        "id": own["id"],
        "state": state.code,
        "kind": "extradition_central_authority",
        "authority": "Extradition Office",
        "email": "extradition@justice.example.org",
        "phone": "'+33140000000",  # a leading + is a formula to a spreadsheet
        "fax": "",
        "website": "",
        "request_form_url": "",
        "languages": "en fr",
        "working_hours": "",
        "time_zone": "",
        "notes": "",
        "audience": "secretariat",
        "tlp": "TLP:AMBER+STRICT",
        "confirmed_at": "",
        "version": "1",
        "stale": "false",
    }


async def test_csv_cells_that_look_like_formulas_are_neutralised(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        await create(
            focal_point,
            state,
            kind="asset_freeze",
            authority='=HYPERLINK("https://evil.example","Click")',
            notes="+cmd|' /C calc'!A0",
            working_hours="-2+3",
        )
        await create(focal_point, state, kind="ct_coordinator", authority="@SUM(1+1)", notes=None)
        rows = rows_of(await export(focal_point, format="csv", state=state.code))
    first, second = sorted(rows, key=lambda row: row["kind"])
    assert first["authority"] == '\'=HYPERLINK("https://evil.example","Click")'
    assert first["notes"] == "'+cmd|' /C calc'!A0"
    assert first["working_hours"] == "'-2+3"
    assert second["authority"] == "'@SUM(1+1)"
    for row in rows:
        assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values()), row


async def test_vcards_parse_back_with_their_text_intact(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        entry = await create(
            focal_point,
            state,
            authority=AWKWARD_AUTHORITY,
            notes=AWKWARD_NOTES,
            fax="+33 1 44 55 66 77",
            website="https://justice.example.org",
            request_form_url="https://justice.example.org/forms;lang=fr?a=1,2",
            time_zone="Europe/Paris",
        )
        response = await export(focal_point, format="vcard", state=state.code)
    assert response.headers["content-type"] == "text/vcard; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="contact-points.vcf"'
    assert "Department\\; International" in response.text and "Justice\\," in response.text
    assert "phone.\\nEMAIL:" in response.text
    [card] = list(vobject.readComponents(response.text))
    assert card.version.value == "4.0" and card.kind.value == "org"
    assert card.fn.value == AWKWARD_AUTHORITY
    assert card.org.value == [AWKWARD_AUTHORITY]
    assert card.note.value == AWKWARD_NOTES
    # The notes' line break stayed inside the note: no property was smuggled in.
    assert [email.value for email in card.contents["email"]] == [entry["email"]]
    assert card.uid.value == f"urn:uuid:{entry['id']}"
    phones = {tel.params["TYPE"][0]: tel.value for tel in card.contents["tel"]}
    assert phones == {"voice": "tel:+33140000000", "fax": "tel:+33144556677"}
    assert [lang.value for lang in card.contents["lang"]] == ["en", "fr"]
    # A link's ; and , are percent-encoded: a URI value is not escaped as text is.
    assert [url.value for url in card.contents["url"]] == [
        "https://justice.example.org",
        "https://justice.example.org/forms%3Blang=fr?a=1%2C2",
    ]
    assert card.tz.value == "Europe/Paris"
    # The marking of a `member_states` entry travels as a category.
    assert card.categories.value == ["extradition_central_authority", state.code, "TLP:GREEN"]


async def test_the_export_is_audited_with_the_ids(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        ids = {
            (await create(focal_point, state, kind=kind))["id"]
            for kind in ("asset_freeze", "ct_coordinator")
        }
        response = await export(focal_point, format="vcard", state=state.code)
    [event] = await audit_events(database, request_id=response.headers["X-Request-ID"])
    assert (event.action, event.outcome) == ("contact.export", "allowed")
    details = json.loads(event.details)
    assert details["format"] == "vcard" and details["count"] == 2
    assert set(details["ids"]) == ids


async def test_an_unknown_format_is_422(app: FastAPI, database: Database) -> None:
    async with signed_in(app, database, "cted_analyst") as analyst:
        for format in ("xml", "VCARD", "json", ""):
            response = await analyst.get("/api/v1/contact-points/export", params={"format": format})
            assert response.status_code == 422, format
            assert response.json()["errors"][0]["loc"] == ["query", "format"]
