"""The world of technical assistance (two States, two Compact entities, CTED, each role
signed in), with helpers for activities."""

import json
from typing import Any

import httpx
from sqlmodel import col, select

from ctcp.audit.models import AuditEvent
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity
from tests.assistance.conftest import Assist, assist, signed_in
from tests.factories import audit_events, make_org

__all__ = [
    "activity_body",
    "assist",
    "cells_of",
    "create_activity",
    "details_of",
    "events_of",
    "new_entity",
    "plan_with_measures",
    "rows_of",
    "withdraw_needs",
]


def activity_body(state: str, **changes: Any) -> dict[str, Any]:
    return {
        "state": state,
        "area": "border_management",
        "title": "Border management training",
        "description": "Training of border guards on API/PNR.",
        "status": "planned",
        "starts_on": "2027-01-01",
        "ends_on": "2027-06-30",
    } | changes


async def create_activity(
    world: Assist, who: str = "entity", state: Organization | None = None, **changes: Any
) -> dict[str, Any]:
    client: httpx.AsyncClient = world[who]
    created = await client.post(
        "/api/v1/activities", json=activity_body((state or world.state).code, **changes)
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def new_entity(world: Assist, who: str) -> Organization:
    """A further Compact entity, its focal point signed in as `world[who]` (closed with
    the world's other clients)."""
    entity = await make_org(world.database, kind="compact_entity")
    world.clients[who] = await signed_in(world.app, world.database, "entity_focal_point", entity)
    return entity


async def plan_with_measures(world: Assist, state: Organization) -> dict[str, Any]:
    """A capacity consultation for `state` with one measure in each entity's charge."""
    created = await world["analyst"].post(
        "/api/v1/consultations",
        json={
            "state": state.code,
            "programme": "countering_terrorist_travel",
            "start_date": "2026-05-04",
            "end_date": "2026-05-06",
            "participants": [],
            "baseline_findings": "No API system in place.",
            "measures": [
                {
                    "title": f"Measure of {entity.code}",
                    "recommendations": "Tailored recommendation.",
                    "entity": entity.code,
                    "indicators": [],
                }
                for entity in (world.entity, world.other_entity)
            ],
        },
    )
    assert created.status_code == 201, created.text
    plan: dict[str, Any] = created.json()
    return plan


async def withdraw_needs(world: Assist, state: Organization | None = None) -> None:
    """The State's focal point stops sharing its needs, at once."""
    code = (state or world.state).code
    who = "state" if state is None or state.id == world.state.id else "officer"
    withdrawn = await world[who].post(
        f"/api/v1/states/{code}/needs-consent/withdraw", json={"reason": "Cabinet decision."}
    )
    assert withdrawn.status_code == 201, withdrawn.text


async def rows_of(database: Database, state: Organization) -> list[Activity]:
    """The State's activities as the database holds them."""
    async with database.sessionmaker() as session:
        statement = select(Activity).where(col(Activity.state_id) == state.id)
        return list((await session.exec(statement)).all())


async def events_of(database: Database, response: httpx.Response) -> list[AuditEvent]:
    """The audit events the request behind `response` wrote."""
    return await audit_events(database, request_id=response.headers["X-Request-ID"])


def details_of(event: AuditEvent) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(event.details)
    return details


async def cells_of(
    client: httpx.AsyncClient, *states: Organization, **params: Any
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The matrix cells of these States the caller gets, by (State code, area or
    programme); every State's when none is named."""
    response = await client.get("/api/v1/coordination/matrix", params=params)
    assert response.status_code == 200, response.text
    codes = {state.code for state in states}
    return {
        (cell["state"], cell["area"] or cell["programme"]): cell
        for cell in response.json()["cells"]
        if not codes or cell["state"] in codes
    }
