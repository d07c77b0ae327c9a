"""`ctcp contacts import FILE.csv`: the export's columns, every row checked as the API
checks it, all problems named by line and field, and nothing written unless all is good.
"""

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import col, select

from ctcp.contacts import exchange
from ctcp.contacts import service as contacts
from ctcp.contacts.models import ContactPoint, ContactPointVersion
from ctcp.contacts.schemas import ContactPointCreate
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import audit_events, make_org, make_user, new_client, run_ctcp, sign_in

HEADER = (
    "state,kind,authority,email,phone,fax,website,request_form_url,languages,"
    "working_hours,time_zone,notes,audience"
)


def line(state: str, **changes: str) -> str:
    """One row in HEADER's columns: a good entry unless changed."""
    cells = {
        "state": state,
        "kind": "mla_central_authority",
        "authority": "Ministry of Justice, Central Authority",
        "email": "mla@justice.example.org",
        "phone": "+254 20 222 7461",
        "fax": "",
        "website": "https://justice.example.org",
        "request_form_url": "",
        "languages": "en sw",
        "working_hours": "Mon-Fri 08:00-17:00",
        "time_zone": "Africa/Nairobi",
        "notes": "Requests by e-mail; urgent ones also by phone.",
        "audience": "member_states",
    } | changes
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells[name] for name in HEADER.split(","))
    return out.getvalue()


@pytest.fixture
async def fresh(fresh_database_url: str) -> AsyncIterator[Database]:
    """A database of its own, so counts are exact and imports meet no one else's rows."""
    database = Database(fresh_database_url)
    yield database
    await database.dispose()


@pytest.fixture
def env(fresh_database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"CTCP_DATABASE_URL": fresh_database_url, "CTCP_VAR_DIR": str(tmp_path)}


async def ctcp(env: dict[str, str], *args: str) -> tuple[int, str]:
    """The command line, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(run_ctcp, env, *args)


def csv_file(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / f"contacts-{uuid.uuid4().hex[:6]}.csv"
    path.write_text("\r\n".join([header, *lines]) + "\r\n", encoding="utf-8")
    return path


async def entries_of(database: Database, state: Organization) -> list[ContactPoint]:
    async with database.sessionmaker() as session:
        statement = select(ContactPoint).where(col(ContactPoint.state_id) == state.id)
        return list((await session.exec(statement)).all())


async def count(database: Database, model: Any) -> int:
    async with database.sessionmaker() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


def test_every_field_of_the_api_is_a_column_the_import_requires() -> None:
    assert set(ContactPointCreate.model_fields) == set(exchange.REQUIRED_IMPORT_COLUMNS)
    assert set(exchange.REQUIRED_IMPORT_COLUMNS) | set(exchange.OPTIONAL_IMPORT_COLUMNS) == set(
        exchange.CSV_COLUMNS
    )


async def test_a_valid_file_creates_entries_with_versions_and_audit_events(
    fresh: Database, env: dict[str, str], tmp_path: Path
) -> None:
    state = await make_org(fresh)
    kept_id = uuid.uuid4()
    confirmed = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    path = csv_file(
        tmp_path,
        line(state.code),
        line(state.code.lower(), kind="police_24_7", email="24-7@police.example.org"),
        "",  # a blank line is skipped
        line(state.code, kind="financial_intelligence_unit", languages="fr, EN"),
        header=HEADER,
    )
    # The optional columns too, in another order: an id kept and a confirmation date.
    with_id = csv_file(
        tmp_path,
        f"{kept_id},{confirmed.isoformat()}," + line(state.code, kind="ct_coordinator"),
        header="id,confirmed_at," + HEADER,
    )

    code, output = await ctcp(env, "contacts", "import", str(path))
    assert code == 0, output
    assert f"imported 3 contact points from {path.name}" in output
    code, output = await ctcp(env, "contacts", "import", str(with_id))
    assert code == 0, output

    entries = await entries_of(fresh, state)
    assert sorted(e.kind for e in entries) == [
        "ct_coordinator",
        "financial_intelligence_unit",
        "mla_central_authority",
        "police_24_7",
    ]
    by_kind = {e.kind: e for e in entries}
    assert by_kind["mla_central_authority"].phone == "+254202227461"
    assert by_kind["mla_central_authority"].languages == "en,sw"
    assert by_kind["financial_intelligence_unit"].languages == "en,fr"
    assert by_kind["ct_coordinator"].id == kept_id
    assert by_kind["ct_coordinator"].confirmed_at == confirmed
    assert all(e.version == 1 and e.soon_stale_reminded_at is None for e in entries)

    async with fresh.sessionmaker() as session:
        versions = (
            await session.exec(
                select(ContactPointVersion).where(
                    col(ContactPointVersion.contact_point_id).in_([e.id for e in entries])
                )
            )
        ).all()
    assert sorted((v.contact_point_id, v.version, v.change) for v in versions) == sorted(
        (e.id, 1, "created") for e in entries
    )
    assert all(v.actor_user_id is None and v.actor_organization_id is None for v in versions)
    assert versions[0].snapshot["state"] == state.code

    created = await audit_events(fresh, action="contact.create")
    assert sorted(event.object_id or "" for event in created) == sorted(str(e.id) for e in entries)
    assert all(event.actor_user_id is None for event in created)
    assert all(event.user_agent == "ctcp-cli" for event in created)
    imports = await audit_events(fresh, action="contact.import")
    assert [(event.outcome, json.loads(event.details)) for event in imports] == [
        ("allowed", {"source": path.name, "created": 3, "problems": 0}),
        ("allowed", {"source": with_id.name, "created": 1, "problems": 0}),
    ]
    code, output = await ctcp(env, "audit", "verify")
    assert code == 0, output


async def test_import_as_a_cted_analyst_names_them_and_refuses_anyone_else(
    fresh: Database, env: dict[str, str], tmp_path: Path
) -> None:
    state = await make_org(fresh)
    analyst = await make_user(fresh, roles=("cted_analyst",))
    focal_point = await make_user(fresh, org=state, roles=("state_focal_point",))
    path = csv_file(tmp_path, line(state.code))

    for email in (focal_point.email, "nobody@ctcp.example"):
        code, output = await ctcp(env, "contacts", "import", str(path), "--as", email)
        assert code == 2, output
        assert email in output
    assert await entries_of(fresh, state) == []

    code, output = await ctcp(env, "contacts", "import", str(path), "--as", analyst.email)
    assert code == 0, output
    [entry] = await entries_of(fresh, state)
    async with fresh.sessionmaker() as session:
        [version] = (
            await session.exec(
                select(ContactPointVersion).where(
                    col(ContactPointVersion.contact_point_id) == entry.id
                )
            )
        ).all()
    assert (version.actor_user_id, version.actor_organization_id) == (
        analyst.id,
        analyst.organization_id,
    )
    [event] = await audit_events(fresh, action="contact.create")
    assert (event.actor_user_id, event.object_id) == (analyst.id, str(entry.id))


async def test_one_bad_row_among_good_ones_writes_nothing_and_names_every_problem(
    fresh: Database, env: dict[str, str], tmp_path: Path
) -> None:
    state = await make_org(fresh)
    notes = "First line of the notes,\nsecond line"
    path = csv_file(
        tmp_path,
        line(state.code),  # line 2
        line(state.code, phone="+254 12"),  # line 3: not a valid number
        line(state.code, notes=notes),  # lines 4-5: a quoted line break
        line("ZZZ9", kind="treasury"),  # line 6: unknown State and kind
        line(state.code, website="javascript:alert(1)", languages=""),  # line 7
    )
    contact_rows, versions = (
        await count(fresh, ContactPoint),
        await count(fresh, ContactPointVersion),
    )
    code, output = await ctcp(env, "contacts", "import", str(path))

    assert code == 1, output
    assert "line 3, phone: not a valid phone number" in output
    assert "line 6, kind: Input should be 'asset_freeze'" in output
    assert "line 6, state: 'ZZZ9' is not a Member State on the platform" in output
    assert "line 7, website: must be an https:// link" in output
    assert "line 7, languages: required" in output
    for good in ("line 2", "line 4", "line 5"):
        assert good not in output
    assert f"nothing imported: 5 problems in {path.name}" in output
    assert await entries_of(fresh, state) == []
    assert await count(fresh, ContactPoint) == contact_rows
    assert await count(fresh, ContactPointVersion) == versions
    assert await audit_events(fresh, action="contact.create") == []
    [refusal] = await audit_events(fresh, action="contact.import")
    assert refusal.outcome == "denied"
    assert json.loads(refusal.details) == {"source": path.name, "created": 0, "problems": 5}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (HEADER + ",email", "columns named twice: email"),
        (HEADER.replace(",email", ""), "missing columns: email"),
        (HEADER.replace("notes", "remarks"), "unknown columns: 'remarks'"),
        ("", "the file is empty"),
    ],
    ids=["duplicated", "missing", "unknown", "empty"],
)
async def test_a_bad_header_writes_nothing(
    fresh: Database, env: dict[str, str], tmp_path: Path, header: str, message: str
) -> None:
    state = await make_org(fresh)
    path = tmp_path / "contacts.csv"
    path.write_text(f"{header}\r\n{line(state.code)}\r\n" if header else "", encoding="utf-8")
    code, output = await ctcp(env, "contacts", "import", str(path))
    assert code == 1, output
    assert f"line 1: {message}" in output
    assert await entries_of(fresh, state) == []


async def test_ids_taken_or_named_twice_are_refused(
    fresh: Database, env: dict[str, str], tmp_path: Path
) -> None:
    state = await make_org(fresh)
    taken, twice = uuid.uuid4(), uuid.uuid4()
    header = "id," + HEADER
    first = csv_file(tmp_path, f"{taken}," + line(state.code), header=header)
    assert (await ctcp(env, "contacts", "import", str(first)))[0] == 0
    again = csv_file(
        tmp_path,
        f"{twice}," + line(state.code),
        f"{taken}," + line(state.code),
        f"{twice}," + line(state.code),
        "not-a-uuid," + line(state.code),
        header=header,
    )
    code, output = await ctcp(env, "contacts", "import", str(again))
    assert code == 1, output
    assert "line 3, id: an entry with this id exists already" in output
    assert "line 4, id: named twice in the file" in output
    assert "line 5, id: not a UUID" in output
    assert [entry.id for entry in await entries_of(fresh, state)] == [taken]


async def test_a_missing_file_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    code, output = await ctcp(env, "contacts", "import", str(tmp_path / "absent.csv"))
    assert code == 2
    assert "does not exist" in output


def _content(entry: Any) -> dict[str, Any]:
    """What an entry says, beside its database-specific State id and row times."""
    values: dict[str, Any] = entry.model_dump(exclude={"state", "created_at", "updated_at"})
    return values | {"state": entry.state.code}


async def _read_back(database: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    async with database.sessionmaker() as session:
        rows = (await session.exec(select(ContactPoint).where(col(ContactPoint.id).in_(ids)))).all()
        return {entry.id: _content(entry) for entry in await contacts.read_models(session, rows)}


async def test_export_then_import_into_a_fresh_database_round_trips(
    app: FastAPI,
    database: Database,
    fresh: Database,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    state = await make_org(database)
    formulas = {
        "authority": '=HYPERLINK("https://evil.example","Ministry")',
        "working_hours": "+24/7",
        "notes": "@once: call first\n-then write; '=a note that starts with an apostrophe",
    }
    bodies = [
        {"kind": "asset_freeze", **formulas},
        {"kind": "police_24_7", "notes": "'=kept as typed", "fax": "+33 1 44 55 66 77"},
        {"kind": "ct_coordinator", "phone": None, "website": None, "notes": None},
    ]
    async with new_client(app) as analyst:
        await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)
        for changes in bodies:
            body = {
                "state": state.code,
                "authority": "Financial Intelligence Centre",
                "email": "fic@fic.example.org",
                "phone": "+27 12 641 6000",
                "website": "https://www.fic.example.org",
                "request_form_url": "https://www.fic.example.org/request",
                "languages": ["en", "af"],
                "working_hours": "Mon-Fri",
                "time_zone": "Africa/Johannesburg",
                "notes": "By the secure channel.",
                "audience": "compact",
            } | changes
            created = await analyst.post("/api/v1/contact-points", json=body)
            assert created.status_code == 201, created.text
        exported = await analyst.get(
            "/api/v1/contact-points/export", params={"format": "csv", "state": state.code}
        )
    assert exported.status_code == 200, exported.text
    # The file itself is safe to open in a spreadsheet: no cell starts a formula.
    cells = [cell for row in csv.reader(io.StringIO(exported.text)) for cell in row]
    assert "'" + formulas["authority"] in cells and "'+24/7" in cells
    assert "''=kept as typed" in cells
    assert not any(cell.startswith(exchange.FORMULA_STARTS) for cell in cells)

    path = tmp_path / "export.csv"
    path.write_bytes(exported.content)
    await make_org(fresh, code=state.code)
    code, output = await ctcp(env, "contacts", "import", str(path))
    assert code == 0, output
    assert "imported 3 contact points" in output

    ids = [uuid.UUID(row["id"]) for row in csv.DictReader(io.StringIO(exported.text))]
    original, imported = await _read_back(database, ids), await _read_back(fresh, ids)
    assert len(original) == 3
    assert imported == original
    by_kind = {values["kind"]: values for values in imported.values()}
    assert {name: by_kind["asset_freeze"][name] for name in formulas} == formulas
    assert by_kind["police_24_7"]["notes"] == "'=kept as typed"


async def test_a_row_confirmed_in_the_future_is_refused(
    fresh: Database, env: dict[str, str], tmp_path: Path
) -> None:
    state = await make_org(fresh)
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    path = csv_file(
        tmp_path,
        f"{later}," + line(state.code),
        "yesterday," + line(state.code),
        header="confirmed_at," + HEADER,
    )
    code, output = await ctcp(env, "contacts", "import", str(path))
    assert code == 1, output
    assert "line 2, confirmed_at: in the future" in output
    assert "line 3, confirmed_at: not an ISO 8601 date and time" in output
    assert await entries_of(fresh, state) == []


async def test_the_command_is_listed(env: dict[str, str]) -> None:
    code, output = await ctcp(env, "contacts", "--help")
    assert code == 0
    assert "import" in output and "remind" in output
