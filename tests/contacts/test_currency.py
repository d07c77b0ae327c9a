"""Currency: an entry not confirmed for 365 days is stale, shown and filtered as such,
and confirming it (or correcting it) makes it current again."""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col

from ctcp.contacts.models import ContactPoint
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import make_org, make_user, new_client, sign_in


@asynccontextmanager
async def focal_point_of(
    app: FastAPI, database: Database, state: Organization
) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        user = await make_user(database, org=state, roles=("state_focal_point",))
        await sign_in(client, user.email)
        yield client


async def entry_confirmed_days_ago(
    client: httpx.AsyncClient, database: Database, state: Organization, days: int
) -> str:
    """A new entry of `state` whose last confirmation was `days` ago (set in the database:
    the clock cannot move a year without ending every session)."""
    created = await client.post(
        "/api/v1/contact-points",
        json={
            "state": state.code,
            "kind": "financial_intelligence_unit",
            "authority": f"Financial Intelligence Unit ({days} days)",
            "email": "fiu@finance.example.org",
            "languages": ["en"],
            "audience": "compact",
        },
    )
    assert created.status_code == 201, created.text
    entry_id: str = created.json()["id"]
    async with database.transaction() as session:
        await session.exec(
            update(ContactPoint)
            .where(col(ContactPoint.id) == uuid.UUID(entry_id))
            .values(confirmed_at=clock.now() - timedelta(days=days))
        )
    return entry_id


async def listed(client: httpx.AsyncClient, state: Organization, **params: Any) -> list[str]:
    response = await client.get("/api/v1/contact-points", params={"state": state.code} | params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_an_entry_unconfirmed_for_a_year_is_stale(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        fresh = await entry_confirmed_days_ago(focal_point, database, state, 0)
        ageing = await entry_confirmed_days_ago(focal_point, database, state, 364)
        stale = await entry_confirmed_days_ago(focal_point, database, state, 366)
        for entry_id, expected in ((fresh, False), (ageing, False), (stale, True)):
            shown = await focal_point.get(f"/api/v1/contact-points/{entry_id}")
            assert shown.json()["stale"] is expected, entry_id
        items = (
            await focal_point.get("/api/v1/contact-points", params={"state": state.code})
        ).json()["items"]
        assert {item["id"]: item["stale"] for item in items} == {
            fresh: False,
            ageing: False,
            stale: True,
        }
        assert await listed(focal_point, state, stale="true") == [stale]
        assert set(await listed(focal_point, state, stale="false")) == {fresh, ageing}
        exported = await focal_point.get(
            "/api/v1/contact-points/export", params={"state": state.code, "stale": "true"}
        )
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row["id"], row["stale"]) for row in rows] == [(stale, "true")]


async def test_confirming_a_stale_entry_makes_it_current(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        stale = await entry_confirmed_days_ago(focal_point, database, state, 400)
        before = clock.now()
        confirmed = await focal_point.post(f"/api/v1/contact-points/{stale}/confirm")
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["stale"] is False
        assert datetime.fromisoformat(confirmed.json()["confirmed_at"]) >= before
        assert await listed(focal_point, state, stale="true") == []
        assert await listed(focal_point, state, stale="false") == [stale]


async def test_correcting_a_stale_entry_makes_it_current(app: FastAPI, database: Database) -> None:
    state = await make_org(database)
    async with focal_point_of(app, database, state) as focal_point:
        stale = await entry_confirmed_days_ago(focal_point, database, state, 400)
        corrected = await focal_point.patch(
            f"/api/v1/contact-points/{stale}", json={"version": 1, "email": "fiu@gov.example.org"}
        )
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["stale"] is False
        assert await listed(focal_point, state, stale="true") == []
