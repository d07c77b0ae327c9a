"""Bad input to the directory: 422 with `errors` naming the field, and nothing written."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.contacts.schemas import MAX_NOTES
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import make_org, make_user, new_client, sign_in

# Each bad value, and the field the answer must name.
BAD_VALUES = [
    ("email", "not-an-address"),
    ("email", "two@@example.org"),
    ("email", "freeze@example"),
    ("phone", "call the ministry"),
    ("phone", "01 40 00 00 00"),  # no country code
    ("phone", "+33 12"),  # too short for France
    ("fax", "+999 1234567"),  # no such country code
    ("phone", "+44 20 7946 0958 ext. 12"),  # E.164 has no extension: it would be lost
    ("languages", ["xx"]),
    ("languages", ["eng"]),
    ("languages", ["en", "klingon"]),
    ("languages", []),
    ("website", "http://www.finance.example.org"),
    ("website", "javascript:alert(document.cookie)"),
    ("website", "https://user:secret@finance.example.org"),
    ("request_form_url", "ftp://finance.example.org/form"),
    ("request_form_url", "//finance.example.org/form"),
    ("website", "https://finance.example.org/\x01"),
    ("website", "https://bücher.example.org"),  # a host in its xn-- form, please
    ("notes", "n" * (MAX_NOTES + 1)),
    ("authority", "A"),
    ("authority", "A" * 301),
    ("authority", "Ministry\nEMAIL:attacker@evil.example"),
    ("working_hours", "09:00-17:00\r\nTZ:Etc/UTC"),
    ("notes", "Send to \u202egro.elpmaxe@live"),  # a right-to-left override
    ("kind", "embassy"),
    ("audience", "public"),
    ("audience", "everyone"),
    ("time_zone", "Mars/Olympus_Mons"),
    ("state", "ZZZ NOT A STATE"),
]
REQUIRED = ("state", "kind", "authority", "email", "languages", "audience")


def entry_body(code: str, **changes: Any) -> dict[str, Any]:
    return {
        "state": code,
        "kind": "police_24_7",
        "authority": "National Central Bureau, 24/7 desk",
        "email": "ncb@police.example.org",
        "phone": "+44 20 7946 0958",
        "languages": ["en"],
        "audience": "member_states",
    } | changes


@asynccontextmanager
async def focal_point_of(
    app: FastAPI, database: Database, state: Organization
) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        user = await make_user(database, org=state, roles=("state_focal_point",))
        await sign_in(client, user.email)
        yield client


def assert_refused(response: httpx.Response, field: str, case: Any) -> None:
    """422 as a problem document whose `errors` name `field` (or the body, when the
    whole body is at fault)."""
    assert response.status_code == 422, (case, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["errors"], case
    places = [error["loc"] for error in problem["errors"]]
    assert any(field in loc for loc in places), (case, places)
    assert all(error["msg"] for error in problem["errors"])


async def entries_of(client: httpx.AsyncClient, state: Organization) -> list[dict[str, Any]]:
    listed = await client.get("/api/v1/contact-points", params={"state": state.code})
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_malformed_fields_are_refused_on_creation(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        for field, value in BAD_VALUES:
            response = await focal_point.post(
                "/api/v1/contact-points", json=entry_body(state.code, **{field: value})
            )
            assert_refused(response, field, (field, value))
        assert await entries_of(focal_point, state) == []


async def test_missing_required_fields_are_refused(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        for field in REQUIRED:
            body = {k: v for k, v in entry_body(state.code).items() if k != field}
            response = await focal_point.post("/api/v1/contact-points", json=body)
            assert_refused(response, field, field)
            blank = await focal_point.post(
                "/api/v1/contact-points", json=entry_body(state.code, **{field: None})
            )
            assert_refused(blank, field, field)
        unknown = await focal_point.post(
            "/api/v1/contact-points", json=entry_body(state.code, password="x")
        )
        assert_refused(unknown, "password", "unknown field")
        assert await entries_of(focal_point, state) == []


async def test_an_unknown_state_is_422_for_the_analyst_too(
    app: FastAPI, database: Database
) -> None:
    entity = await make_org(database, kind="compact_entity")
    async with new_client(app) as analyst:
        await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)
        for code in ("ZZZ", entity.code):  # no such organization; not a Member State
            response = await analyst.post("/api/v1/contact-points", json=entry_body(code))
            assert_refused(response, "state", code)


@pytest.mark.parametrize("field", ["kind", "authority", "email", "languages", "audience"])
async def test_an_edit_cannot_clear_a_required_field(
    app: FastAPI, database: Database, field: str
) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        created = await focal_point.post("/api/v1/contact-points", json=entry_body(state.code))
        path = f"/api/v1/contact-points/{created.json()['id']}"
        response = await focal_point.patch(path, json={"version": 1, field: None})
        assert response.status_code == 422, response.text
        assert field in response.json()["errors"][0]["msg"]
        assert (await focal_point.get(path)).json() == created.json()


async def test_malformed_fields_are_refused_on_edit(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        created = await focal_point.post("/api/v1/contact-points", json=entry_body(state.code))
        path = f"/api/v1/contact-points/{created.json()['id']}"
        for field, value in BAD_VALUES:
            if field == "state":
                continue  # an entry never moves to another State
            response = await focal_point.patch(path, json={"version": 1, field: value})
            assert_refused(response, field, (field, value))
        moved = await focal_point.patch(path, json={"version": 1, "state": state.code})
        assert_refused(moved, "state", "state")
        assert (await focal_point.get(path)).json() == created.json()


async def test_optional_fields_may_be_cleared_and_blanks_are_none(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        created = await focal_point.post(
            "/api/v1/contact-points",
            json=entry_body(
                state.code,
                website="https://police.example.org",
                notes="   ",
                working_hours="",
                fax="",
            ),
        )
        assert created.status_code == 201, created.text
        entry = created.json()
        assert (entry["notes"], entry["working_hours"], entry["fax"]) == (None, None, None)
        cleared = await focal_point.patch(
            f"/api/v1/contact-points/{entry['id']}",
            json={"version": 1, "phone": None, "website": None},
        )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["phone"], cleared.json()["website"]) == (None, None)
    assert cleared.json()["phone_display"] is None
