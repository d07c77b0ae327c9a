"""Keeping the directory: who writes which State's entries, edits, retirement, confirmation.

Every change is a new version with who made it, when, and each field's before and after;
an edit based on a version that is no longer current is refused (409), never applied.
"""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from ctcp.contacts.models import ContactPoint, ContactPointVersion
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import audit_events, make_org, make_user, new_client, sign_in


def entry_body(state: str, **changes: Any) -> dict[str, Any]:
    return {
        "state": state,
        "kind": "asset_freeze",
        "authority": "Ministère de l'Économie, Direction générale du Trésor",
        "email": "Gel-Avoirs@dgtresor.example.org",
        "phone": "+33 1 40 00 00 00",
        "fax": "+33 1 44 55 66 77",
        "website": "https://www.tresor.example.org/gel",
        "request_form_url": "https://www.tresor.example.org/gel/demande",
        "languages": ["fr", "EN"],
        "working_hours": "Mon-Fri 09:00-18:00",
        "time_zone": "Europe/Paris",
        "notes": "Urgent requests by e-mail with a copy by fax.",
        "audience": "compact",
    } | changes


@asynccontextmanager
async def signed_in(
    app: FastAPI, database: Database, role: str, org: Organization | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as a new user holding `role` in `org`."""
    async with new_client(app) as client:
        await sign_in(client, (await make_user(database, org=org, roles=(role,))).email)
        yield client


async def create(client: httpx.AsyncClient, state: Organization, **changes: Any) -> dict[str, Any]:
    created = await client.post("/api/v1/contact-points", json=entry_body(state.code, **changes))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def rows_of(database: Database, state: Organization) -> list[ContactPoint]:
    async with database.sessionmaker() as session:
        statement = select(ContactPoint).where(col(ContactPoint.state_id) == state.id)
        return list((await session.exec(statement)).all())


async def version_count(database: Database, entry_id: str) -> int:
    async with database.sessionmaker() as session:
        statement = select(func.count()).where(
            col(ContactPointVersion.contact_point_id) == uuid.UUID(entry_id)
        )
        return int((await session.exec(statement)).one())


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_states_focal_point_adds_an_entry_for_their_state(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        before = clock.now()
        created = await focal_point.post("/api/v1/contact-points", json=entry_body(state.code))
        after = clock.now()
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["state"]["code"] == state.code and entry["kind"] == "asset_freeze"
    assert entry["email"] == "Gel-Avoirs@dgtresor.example.org"
    assert (entry["phone"], entry["phone_display"]) == ("+33140000000", "+33 1 40 00 00 00")
    assert (entry["fax"], entry["fax_display"]) == ("+33144556677", "+33 1 44 55 66 77")
    assert entry["languages"] == ["en", "fr"]
    assert entry["version"] == 1 and entry["stale"] is False
    assert before <= moment(entry["confirmed_at"]) <= after
    assert entry["updated_at"] == entry["created_at"]
    assert created.headers["ETag"] == '"1"'
    [row] = await rows_of(database, state)
    assert str(row.id) == entry["id"] and row.phone == "+33140000000"
    [event] = await audit_events(database, action="contact.create", object_id=entry["id"])
    assert json.loads(event.details) == {
        "state": state.code,
        "kind": "asset_freeze",
        "audience": "compact",
    }


async def test_a_state_cannot_add_another_states_entry(app: FastAPI, database: Database) -> None:
    state, other = await make_org(database), await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        refused = await focal_point.post("/api/v1/contact-points", json=entry_body(other.code))
    assert refused.status_code == 403, refused.text
    assert await rows_of(database, other) == []
    [event] = await audit_events(database, request_id=refused.headers["X-Request-ID"])
    assert (event.action, event.outcome) == ("contact.write", "denied")
    assert json.loads(event.details)["status"] == 403


async def test_an_analyst_keeps_any_states_entries(app: FastAPI, database: Database) -> None:
    first, second = await make_org(database), await make_org(database)
    async with (
        signed_in(app, database, "cted_analyst") as analyst,
        signed_in(app, database, "state_focal_point", second) as focal_point,
    ):
        for state in (first, second):
            await create(analyst, state, audience="secretariat")
        [entry] = (
            await focal_point.get("/api/v1/contact-points", params={"state": second.code})
        ).json()["items"]
        assert entry["audience"] == "secretariat"
        edited = await analyst.patch(
            f"/api/v1/contact-points/{entry['id']}", json={"version": 1, "notes": "By CTED."}
        )
        assert edited.status_code == 200, edited.text
    assert [len(await rows_of(database, state)) for state in (first, second)] == [1, 1]


async def test_roles_that_do_not_keep_the_directory_are_refused(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    for role in ("consent_officer", "platform_admin", "auditor"):
        async with signed_in(app, database, role) as caller:
            refused = await caller.post("/api/v1/contact-points", json=entry_body(state.code))
        assert refused.status_code == 403, role
    async with new_client(app) as anonymous:
        response = await anonymous.post("/api/v1/contact-points", json=entry_body(state.code))
        assert response.status_code == 401
    assert await rows_of(database, state) == []


async def test_an_edit_changes_the_fields_bumps_the_version_and_names_its_author(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    author = await make_user(database, org=state, roles=("state_focal_point",))
    async with new_client(app) as focal_point:
        await sign_in(focal_point, author.email)
        entry = await create(focal_point, state)
        clock.advance(timedelta(seconds=5))
        edited = await focal_point.patch(
            f"/api/v1/contact-points/{entry['id']}",
            json={
                "version": 1,
                "authority": "Direction générale du Trésor, bureau Sanctions",
                "phone": "+33 1 44 87 17 17",
                "fax": None,
                "languages": ["fr"],
            },
        )
        assert edited.status_code == 200, edited.text
        history = await focal_point.get(f"/api/v1/contact-points/{entry['id']}/history")
    body = edited.json()
    assert body["version"] == 2 and edited.headers["ETag"] == '"2"'
    assert body["authority"] == "Direction générale du Trésor, bureau Sanctions"
    assert (body["phone"], body["fax"], body["languages"]) == ("+33144871717", None, ["fr"])
    assert body["notes"] == entry["notes"]
    # Correcting an entry makes it current, as confirming it does.
    assert moment(body["updated_at"]) > moment(entry["updated_at"])
    assert body["confirmed_at"] == body["updated_at"]
    assert history.status_code == 200
    latest, first = history.json()
    assert (latest["version"], latest["change"], first["change"]) == (2, "updated", "created")
    assert latest["actor"] == {
        "user_id": str(author.id),
        "name": author.name,
        "organization": state.code,
    }
    assert abs(moment(latest["at"]) - moment(body["updated_at"])) < timedelta(seconds=1)
    assert latest["changes"] == {
        "authority": {
            "before": entry["authority"],
            "after": "Direction générale du Trésor, bureau Sanctions",
        },
        "phone": {"before": "+33140000000", "after": "+33144871717"},
        "fax": {"before": "+33144556677", "after": None},
        "languages": {"before": "en,fr", "after": "fr"},
    }
    [event] = await audit_events(database, action="contact.update", object_id=entry["id"])
    assert json.loads(event.details)["changes"]["phone"] == latest["changes"]["phone"]


async def test_a_stale_edit_is_409_and_changes_nothing(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with (
        signed_in(app, database, "state_focal_point", state) as focal_point,
        signed_in(app, database, "cted_analyst") as analyst,
    ):
        entry = await create(focal_point, state)
        path = f"/api/v1/contact-points/{entry['id']}"
        first = await analyst.patch(
            path, json={"notes": "Call first."}, headers={"If-Match": '"1"'}
        )
        assert first.status_code == 200 and first.headers["ETag"] == '"2"'
        # The focal point's edits were based on version 1: both ways of saying so are stale.
        stale_body = await focal_point.patch(path, json={"version": 1, "notes": "Write first."})
        stale_header = await focal_point.patch(
            path, json={"notes": "Write first."}, headers={"If-Match": 'W/"1"'}
        )
        for refused in (stale_body, stale_header):
            assert refused.status_code == 409, refused.text
            assert "version 2" in refused.json()["detail"]
        current = (await analyst.get(path)).json()
        assert (current["version"], current["notes"]) == (2, "Call first.")
        assert await version_count(database, entry["id"]) == 2
        # Re-based on the current version, the edit goes through.
        rebased = await focal_point.patch(
            path, json={"notes": "Write first."}, headers={"If-Match": '"2"'}
        )
        assert rebased.status_code == 200 and rebased.json()["version"] == 3
        # Retiring or confirming on a stale version is refused alike.
        for method, suffix in (("POST", "/confirm"), ("DELETE", "")):
            response = await focal_point.request(method, path + suffix, headers={"If-Match": '"2"'})
            assert response.status_code == 409, (method, response.text)
        assert (await analyst.get(path)).status_code == 200


async def test_a_malformed_or_contradictory_version_is_422(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        entry = await create(focal_point, state)
        path = f"/api/v1/contact-points/{entry['id']}"
        cases = [
            ({"version": 1, "notes": "N"}, {"If-Match": '"2"'}),
            ({"notes": "N"}, {"If-Match": "latest"}),
            ({"version": 0, "notes": "N"}, {}),
        ]
        for body, headers in cases:
            response = await focal_point.patch(path, json=body, headers=headers)
            assert response.status_code == 422, (body, headers, response.text)
            assert response.json()["errors"]
        assert (await focal_point.get(path)).json()["version"] == 1


async def test_an_edit_that_changes_nothing_keeps_the_version(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        entry = await create(focal_point, state)
        same = await focal_point.patch(
            f"/api/v1/contact-points/{entry['id']}",
            json={"version": 1, "phone": "+33140000000", "languages": ["en", "fr"]},
        )
    assert same.status_code == 200 and same.json()["version"] == 1
    assert await version_count(database, entry["id"]) == 1


async def test_retiring_an_entry_hides_it_and_keeps_its_history(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with (
        signed_in(app, database, "state_focal_point", state) as focal_point,
        signed_in(app, database, "cted_analyst") as analyst,
        signed_in(app, database, "consent_officer") as officer,
    ):
        entry = await create(focal_point, state)
        path = f"/api/v1/contact-points/{entry['id']}"
        retired = await focal_point.delete(path)
        assert retired.status_code == 204 and retired.content == b""
        for reader in (focal_point, analyst, officer):
            assert (await reader.get(path)).status_code == 404
            listed = await reader.get("/api/v1/contact-points", params={"state": state.code})
            assert listed.json()["items"] == []
            history = await reader.get(f"{path}/history")
            assert history.status_code == 200, history.text
            assert [v["change"] for v in history.json()] == ["retired", "created"]
        for method in ("PATCH", "DELETE"):
            again = await analyst.request(
                method, path, json={"notes": "N"} if method == "PATCH" else None
            )
            assert again.status_code == 404, method
        assert (await analyst.post(f"{path}/confirm")).status_code == 404
    [row] = await rows_of(database, state)
    assert row.retired_at is not None
    [event] = await audit_events(database, action="contact.retire", object_id=entry["id"])
    assert json.loads(event.details)["state"] == state.code


async def test_confirming_moves_confirmed_at_and_nothing_else(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        entry = await create(focal_point, state)
        path = f"/api/v1/contact-points/{entry['id']}"
        clock.advance(timedelta(seconds=5))
        before = clock.now()
        confirmed = await focal_point.post(f"{path}/confirm")
        after = clock.now()
        assert confirmed.status_code == 200, confirmed.text
        body = confirmed.json()
        assert before <= moment(body["confirmed_at"]) <= after
        assert body["version"] == 1 and confirmed.headers["ETag"] == '"1"'
        assert body["updated_at"] == entry["updated_at"] and body["stale"] is False
        # Confirming names no version change, so an edit based on version 1 still applies.
        edited = await focal_point.patch(path, json={"version": 1, "notes": "Still here."})
        assert edited.status_code == 200
        history = (await focal_point.get(f"{path}/history")).json()
    assert [(v["change"], v["version"]) for v in history] == [
        ("updated", 2),
        ("confirmed", 1),
        ("created", 1),
    ]
    assert history[1]["changes"] == {} and history[1]["actor"]["organization"] == state.code
    [event] = await audit_events(database, action="contact.confirm", object_id=entry["id"])
    assert json.loads(event.details)["previously_confirmed_at"]


async def test_the_history_cannot_be_rewritten(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with signed_in(app, database, "state_focal_point", state) as focal_point:
        entry = await create(focal_point, state)
    mine = col(ContactPointVersion.contact_point_id) == uuid.UUID(entry["id"])
    for statement in (
        update(ContactPointVersion).where(mine).values(version=7),
        delete(ContactPointVersion).where(mine),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.exec(statement)  # type: ignore[call-overload]
    assert await version_count(database, entry["id"]) == 1
