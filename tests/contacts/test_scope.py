"""Who reads which contact point: the State itself, the Secretariat, and others by audience.

A State's focal points and the Secretariat read all of a State's entries; Compact
entities (and their API clients with `contacts:read`) those of audience `compact` or
`member_states`; other States' focal points those of audience `member_states`. Anything
else answers 404, on every route, and never shows in a list or an export.
"""

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.audit.models import AuditEvent
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import (
    audit_events,
    bearer_http,
    make_api_client,
    make_org,
    make_user,
    new_client,
    sign_in,
)

AUDIENCES = ("secretariat", "compact", "member_states")
# Which of a State's entries, by audience, each kind of caller reads.
READS = {
    "state": set(AUDIENCES),
    "analyst": set(AUDIENCES),
    "officer": set(AUDIENCES),
    "entity": {"compact", "member_states"},
    "other_state": {"member_states"},
}


@dataclass
class Directory:
    """A State with one entry per audience, and a signed-in caller of every kind."""

    app: FastAPI
    database: Database
    state: Organization
    entity: Organization
    entries: dict[str, str] = field(default_factory=dict)  # audience -> entry id
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __getitem__(self, who: str) -> httpx.AsyncClient:
        return self.clients[who]


def entry_body(state: str, audience: str, **changes: Any) -> dict[str, Any]:
    return {
        "state": state,
        "kind": "mla_central_authority",
        "authority": f"Central Authority ({audience})",
        "email": "mla@justice.example.org",
        "phone": "+254 20 2252299",
        "languages": ["en", "sw"],
        "audience": audience,
    } | changes


async def _signed_in(directory: Directory, who: str, role: str, org: Any) -> None:
    user = await make_user(directory.database, org=org, roles=(role,))
    client = new_client(directory.app)
    await sign_in(client, user.email)
    directory.clients[who] = client


async def build_directory(app: FastAPI, database: Database) -> Directory:
    directory = Directory(
        app, database, await make_org(database), await make_org(database, kind="compact_entity")
    )
    other_state = await make_org(database)
    for who, role, org in (
        ("state", "state_focal_point", directory.state),
        ("other_state", "state_focal_point", other_state),
        ("entity", "entity_focal_point", directory.entity),
        ("analyst", "cted_analyst", None),
        ("officer", "consent_officer", None),
        ("admin", "platform_admin", None),
        ("auditor", "auditor", None),
    ):
        await _signed_in(directory, who, role, org)
    directory.clients["anonymous"] = new_client(app)
    for audience in AUDIENCES:
        created = await directory["state"].post(
            "/api/v1/contact-points", json=entry_body(directory.state.code, audience)
        )
        assert created.status_code == 201, created.text
        directory.entries[audience] = created.json()["id"]
    return directory


@pytest.fixture
async def directory(app: FastAPI, database: Database) -> AsyncIterator[Directory]:
    built = await build_directory(app, database)
    yield built
    for client in built.clients.values():
        await client.aclose()


async def events_of(database: Database, response: httpx.Response) -> list[AuditEvent]:
    """The audit events the request behind `response` wrote."""
    return await audit_events(database, request_id=response.headers["X-Request-ID"])


async def listed_ids(client: httpx.AsyncClient, state: str) -> set[str]:
    response = await client.get("/api/v1/contact-points", params={"state": state, "limit": 200})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_each_caller_reads_the_audiences_the_contract_gives(directory: Directory) -> None:
    for who, audiences in READS.items():
        expected = {directory.entries[audience] for audience in audiences}
        assert await listed_ids(directory[who], directory.state.code) == expected, who
        for audience, entry_id in directory.entries.items():
            response = await directory[who].get(f"/api/v1/contact-points/{entry_id}")
            assert response.status_code == (200 if audience in audiences else 404), (who, audience)
            if response.status_code == 200:
                assert response.json()["audience"] == audience
                assert response.headers["ETag"] == '"1"'


async def test_reads_are_audited_with_the_ids_shown(directory: Directory) -> None:
    listed = await directory["entity"].get(
        "/api/v1/contact-points", params={"state": directory.state.code}
    )
    [event] = await events_of(directory.database, listed)
    assert (event.action, event.outcome) == ("contact.list", "allowed")
    shown = {directory.entries["compact"], directory.entries["member_states"]}
    assert set(json.loads(event.details)["ids"]) == shown
    entry_id = directory.entries["compact"]
    read = await directory["entity"].get(f"/api/v1/contact-points/{entry_id}")
    [event] = await events_of(directory.database, read)
    assert (event.action, event.object_id, event.outcome) == ("contact.read", entry_id, "allowed")
    assert event.actor_organization == directory.entity.code


async def test_roles_without_the_directory_are_refused(directory: Directory) -> None:
    entry_id = directory.entries["member_states"]
    for who in ("admin", "auditor"):
        for path in ("/api/v1/contact-points", f"/api/v1/contact-points/{entry_id}"):
            response = await directory[who].get(path)
            assert response.status_code == 403, (who, path)
            [event] = await events_of(directory.database, response)
            assert (event.action, event.outcome) == ("contact.read", "denied")
    anonymous = await directory["anonymous"].get("/api/v1/contact-points")
    assert anonymous.status_code == 401


async def test_outside_the_scope_every_route_answers_404_and_is_audited(
    directory: Directory,
) -> None:
    compact = directory.entries["compact"]
    readable = directory.entries["member_states"]
    calls = [
        ("GET", compact, None, "contact.read"),
        ("PATCH", compact, {"notes": "Taken over."}, "contact.write"),
        ("DELETE", compact, None, "contact.write"),
        ("POST", f"{compact}/confirm", None, "contact.write"),
        ("GET", f"{compact}/history", None, "contact.history"),
        # Readable by every State, kept by its own only.
        ("PATCH", readable, {"notes": "Taken over."}, "contact.write"),
        ("DELETE", readable, None, "contact.write"),
        ("POST", f"{readable}/confirm", None, "contact.write"),
        ("GET", f"{readable}/history", None, "contact.history"),
    ]
    for method, path, body, action in calls:
        response = await directory["other_state"].request(
            method, f"/api/v1/contact-points/{path}", json=body
        )
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["detail"] == "No such contact point."
        [event] = await events_of(directory.database, response)
        assert (event.action, event.outcome) == (action, "denied"), (method, path)
        assert event.object_id == path.split("/")[0]
        assert json.loads(event.details)["status"] == 404
    # Nothing was changed, confirmed or retired.
    for entry_id in (compact, readable):
        entry = (await directory["analyst"].get(f"/api/v1/contact-points/{entry_id}")).json()
        assert entry["version"] == 1 and entry["notes"] is None
        history = await directory["analyst"].get(f"/api/v1/contact-points/{entry_id}/history")
        assert [version["change"] for version in history.json()] == ["created"]


async def test_outside_the_scope_nothing_shows_in_lists_or_exports(directory: Directory) -> None:
    for who in ("entity", "other_state"):
        exported = await directory[who].get(
            "/api/v1/contact-points/export",
            params={"format": "csv", "state": directory.state.code},
        )
        assert exported.status_code == 200, exported.text
        ids = {row["id"] for row in csv.DictReader(io.StringIO(exported.text))}
        assert ids == {directory.entries[audience] for audience in READS[who]}, who
        everything = await directory[who].get("/api/v1/contact-points", params={"limit": 200})
        hidden = {directory.entries[a] for a in AUDIENCES if a not in READS[who]}
        assert not hidden & {item["id"] for item in everything.json()["items"]}


async def test_an_entity_focal_point_cannot_keep_entries(directory: Directory) -> None:
    entry_id = directory.entries["compact"]
    calls = [
        ("POST", "", entry_body(directory.state.code, "compact")),
        ("PATCH", f"/{entry_id}", {"notes": "Ours now."}),
        ("DELETE", f"/{entry_id}", None),
        ("POST", f"/{entry_id}/confirm", None),
    ]
    for method, suffix, body in calls:
        response = await directory["entity"].request(
            method, f"/api/v1/contact-points{suffix}", json=body
        )
        assert response.status_code == 403, (method, suffix, response.text)
    history = await directory["entity"].get(f"/api/v1/contact-points/{entry_id}/history")
    assert history.status_code == 403
    assert await listed_ids(directory["analyst"], directory.state.code) == set(
        directory.entries.values()
    )


async def test_an_api_client_reads_what_its_entity_reads(directory: Directory) -> None:
    credentials = await make_api_client(
        directory.database, org=directory.entity, scopes=("contacts:read",)
    )
    async with await bearer_http(directory.app, credentials) as machine:
        assert await listed_ids(machine, directory.state.code) == {
            directory.entries["compact"],
            directory.entries["member_states"],
        }
        shown = await machine.get(f"/api/v1/contact-points/{directory.entries['compact']}")
        assert shown.status_code == 200
        hidden = await machine.get(f"/api/v1/contact-points/{directory.entries['secretariat']}")
        assert hidden.status_code == 404
        exported = await machine.get("/api/v1/contact-points/export", params={"format": "vcard"})
        assert exported.status_code == 200
        # Reading is all the scope opens.
        created = await machine.post(
            "/api/v1/contact-points", json=entry_body(directory.state.code, "compact")
        )
        assert created.status_code == 403
        history = await machine.get(
            f"/api/v1/contact-points/{directory.entries['compact']}/history"
        )
        assert history.status_code == 403
    [event] = await events_of(directory.database, shown)
    assert (event.action, event.actor_client_id) == ("contact.read", credentials.client_id)


async def test_an_api_client_without_contacts_read_is_refused(directory: Directory) -> None:
    credentials = await make_api_client(
        directory.database,
        org=directory.entity,
        scopes=("publications:read", "needs:read", "contacts:read"),
    )
    async with await bearer_http(
        directory.app, credentials, scope="publications:read needs:read"
    ) as machine:
        listed = await machine.get("/api/v1/contact-points")
        read = await machine.get(f"/api/v1/contact-points/{directory.entries['compact']}")
    for response in (listed, read):
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"
        assert 'scope="contacts:read"' in response.headers["www-authenticate"]
        [event] = await events_of(directory.database, response)
        assert (event.action, event.outcome) == ("contact.read", "denied")
        assert event.actor_client_id == credentials.client_id
        assert json.loads(event.details)["reason"] == "scope"


async def test_the_secretariats_entity_focal_points_read_every_audience(
    directory: Directory,
) -> None:
    """CTED and UNOCT are Compact entities too, and the Secretariat reads everything."""
    secretariat = await make_org(directory.database, kind="secretariat")
    await _signed_in(directory, "cted_focal_point", "entity_focal_point", secretariat)
    assert await listed_ids(directory["cted_focal_point"], directory.state.code) == set(
        directory.entries.values()
    )
