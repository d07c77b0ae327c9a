"""The audit pages: the filtered log, chain verification and the export, for auditors only."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from ctcp.app import create_app
from ctcp.audit import service as audit
from ctcp.audit.models import AuditEvent
from ctcp.audit.service import AuditContext
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.factories import audit_events, make_user, new_client, sign_in, tamper_with_audit
from tests.web.conftest import Reader, reader

ROLES = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
KIND_OF = {"state_focal_point": "member_state", "entity_focal_point": "compact_entity"}
PAGES = (
    "/portal/audit",
    "/portal/audit?outcome=denied&action=session.create",
    "/portal/audit/verify",
    "/portal/audit/export?action=no.such.action",
)
ROW = re.compile(r'<tr id="event-(\d+)">')


async def _person(app: FastAPI, database: Database, role: str) -> Reader:
    return await reader(app, database, roles=(role,), kind=KIND_OF.get(role, "secretariat"))


def rows(html: str) -> list[int]:
    return [int(found) for found in ROW.findall(html)]


@pytest.mark.parametrize("role", ROLES)
async def test_audit_pages_answer_each_role(app: FastAPI, database: Database, role: str) -> None:
    person = await _person(app, database, role)
    for path in PAGES:
        response = await person.get(path)
        assert response.status_code == (200 if role == "auditor" else 403), (role, path)
    if role != "auditor":
        denied = await audit_events(database, actor_user_id=person.user.id, outcome="denied")
        refused = {event.action for event in denied if event.object_type == "audit"}
        assert refused == {"audit.read", "audit.verify", "audit.export"}


async def test_anonymous_is_sent_to_sign_in(app: FastAPI) -> None:
    async with new_client(app) as anonymous:
        for path in PAGES:
            response = await anonymous.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/portal/sign-in?next=/portal/audit")


async def test_filters_narrow_the_log_newest_first(app: FastAPI, database: Database) -> None:
    auditor = await _person(app, database, "auditor")
    someone = await make_user(database)
    async with new_client(app) as client:
        await client.post(
            "/api/v1/session", json={"email": someone.email, "password": "wrong-password-1"}
        )
        await sign_in(client, someone.email)
    base = f"/portal/audit?object_id={someone.id}&action=session.create"
    both = await auditor.get(base)
    assert both.status_code == 200
    ids = rows(both.text)
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    assert both.text.index("Allowed") < both.text.index("Denied")  # newest first
    assert str(someone.id) in both.text and "session.create" in both.text
    denied = await auditor.get(base + "&outcome=denied")
    assert len(rows(denied.text)) == 1 and 'badge-denied">Denied' in denied.text
    by_actor = await auditor.get(f"/portal/audit?actor={someone.id}")
    assert set(ROW.findall(by_actor.text)) <= {str(i) for i in ids}
    future = (clock.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    later = await auditor.get(base + f"&since={future}")
    assert rows(later.text) == [] and "No event matches these filters." in later.text
    earlier = await auditor.get(base + f"&until={future}")
    assert len(rows(earlier.text)) == 2
    # The export link carries the same filters.
    assert f"/portal/audit/export?action=session.create&amp;object_id={someone.id}" in both.text
    # Reading the log is itself audited, with the filters used.
    read = await audit_events(database, action="audit.read", actor_user_id=auditor.user.id)
    assert read and str(someone.id) in read[-1].details


@pytest.mark.parametrize(
    ("query", "field"),
    [("outcome=maybe", "outcome"), ("since=yesterday", "since"), ("actor=" + "x" * 65, "actor")],
)
async def test_bad_filters_are_a_422_with_the_field(
    app: FastAPI, database: Database, query: str, field: str
) -> None:
    auditor = await _person(app, database, "auditor")
    response = await auditor.get(f"/portal/audit?{query}")
    assert response.status_code == 422
    assert f'href="#{field}"' in response.text and rows(response.text) == []
    export = await auditor.get(f"/portal/audit/export?{query}")
    assert export.status_code == 422
    assert export.headers["content-type"].startswith("text/html")


async def test_the_log_pages_through_every_event(app: FastAPI, database: Database) -> None:
    auditor = await _person(app, database, "auditor")
    action = f"test.pager.{uuid.uuid4().hex[:8]}"
    async with database.transaction() as session:
        for number in range(53):
            audit.record(session, AuditContext(), action, details={"n": number})
    first = await auditor.get(f"/portal/audit?action={action}")
    assert len(rows(first.text)) == 50
    found = re.search(r'href="([^"]*cursor=[^"]+)" rel="next"', first.text)
    assert found
    second = await auditor.get(found.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert len(rows(second.text)) == 3
    assert not set(rows(first.text)) & set(rows(second.text))
    assert 'rel="next"' not in second.text


async def test_verify_shows_an_intact_chain_and_is_audited(
    app: FastAPI, database: Database
) -> None:
    auditor = await _person(app, database, "auditor")
    response = await auditor.get("/portal/audit/verify")
    assert response.status_code == 200
    assert "The chain is intact" in response.text
    [event] = await audit_events(database, action="audit.verify", actor_user_id=auditor.user.id)
    assert json.loads(event.details)["valid"] is True


async def test_verify_shows_where_a_tampered_chain_breaks(
    fresh_database_url: str, settings: Settings, backend: str
) -> None:
    database = Database(fresh_database_url)
    async with database.transaction() as session:
        for n in range(5):
            audit.record(session, AuditContext(), f"test.event.{n}")
    async with database.sessionmaker() as session:
        statement = select(AuditEvent).where(col(AuditEvent.action) == "test.event.2")
        victim = (await session.exec(statement)).one()
    await tamper_with_audit(
        database, backend, f"UPDATE audit_events SET outcome = 'denied' WHERE id = {victim.id}"
    )
    isolated = create_app(settings.model_copy(update={"database_url": fresh_database_url}))
    async with isolated.router.lifespan_context(isolated):
        person = await reader(isolated, database, roles=("auditor",))
        response = await person.get("/portal/audit/verify")
        await person.client.aclose()
    assert response.status_code == 200
    assert f"The chain is broken at event #{victim.id}" in response.text
    await database.dispose()


async def test_export_downloads_the_filtered_events_and_is_audited(
    app: FastAPI, database: Database
) -> None:
    auditor = await _person(app, database, "auditor")
    someone = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, someone.email)
    response = await auditor.get(f"/portal/audit/export?actor={someone.id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines and {line["actor"]["user_id"] for line in lines} == {str(someone.id)}
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    [event] = await audit_events(database, action="audit.export", actor_user_id=auditor.user.id)
    assert json.loads(event.details)["filters"] == {"actor": str(someone.id)}
