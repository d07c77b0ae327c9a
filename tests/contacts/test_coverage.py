"""The completeness view: for CTED, which States have which kinds, stale or missing."""

import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col

from ctcp.contacts.models import ContactKind, ContactPoint
from ctcp.core.clock import clock
from ctcp.core.db import Database
from tests.factories import (
    audit_events,
    bearer_http,
    make_api_client,
    make_org,
    make_user,
    new_client,
    sign_in,
)

COVERAGE = "/api/v1/contact-points/coverage"


async def _age(database: Database, entry_id: str, days: int) -> None:
    async with database.transaction() as session:
        await session.exec(
            update(ContactPoint)
            .where(col(ContactPoint.id) == uuid.UUID(entry_id))
            .values(confirmed_at=clock.now() - timedelta(days=days))
        )


def _row_of(coverage: list[dict[str, Any]], code: str) -> dict[str, Any]:
    [row] = [row for row in coverage if row["state"]["code"] == code]
    return row


async def test_cted_sees_per_state_which_kinds_are_present_stale_or_missing(
    app: FastAPI, database: Database
) -> None:
    state, empty = await make_org(database), await make_org(database)
    entity = await make_org(database, kind="compact_entity")
    async with new_client(app) as analyst:
        await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)

        async def add(kind: str, audience: str = "secretariat") -> str:
            created = await analyst.post(
                "/api/v1/contact-points",
                json={
                    "state": state.code,
                    "kind": kind,
                    "authority": f"Authority for {kind}",
                    "email": "door@gov.example.org",
                    "languages": ["en"],
                    "audience": audience,
                },
            )
            assert created.status_code == 201, created.text
            entry_id: str = created.json()["id"]
            return entry_id

        await add("asset_freeze")
        await _age(database, await add("asset_freeze", "compact"), 400)
        await add("police_24_7")
        retired = await add("ct_coordinator")
        assert (await analyst.delete(f"/api/v1/contact-points/{retired}")).status_code == 204
        response = await analyst.get(COVERAGE)
    assert response.status_code == 200, response.text
    coverage = response.json()
    row = _row_of(coverage, state.code)
    assert {kind["kind"]: (kind["entries"], kind["stale"]) for kind in row["kinds"]} == {
        "asset_freeze": (2, 1),
        "mla_central_authority": (0, 0),
        "extradition_central_authority": (0, 0),
        "police_24_7": (1, 0),
        "financial_intelligence_unit": (0, 0),
        "ct_coordinator": (0, 0),  # retired: no longer counts
    }
    assert set(row["missing"]) == {
        "mla_central_authority",
        "extradition_central_authority",
        "financial_intelligence_unit",
        "ct_coordinator",
    }
    assert row["stale"] == 1
    nothing = _row_of(coverage, empty.code)
    assert nothing["missing"] == [kind.value for kind in ContactKind] and nothing["stale"] == 0
    # Member States only.
    assert entity.code not in {row["state"]["code"] for row in coverage}
    [event] = await audit_events(database, request_id=response.headers["X-Request-ID"])
    assert (event.action, event.outcome) == ("contact.coverage", "allowed")


async def test_only_cted_analysts_see_the_completeness_view(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    entity = await make_org(database, kind="compact_entity")
    callers = [
        ("state_focal_point", state),
        ("entity_focal_point", entity),
        ("consent_officer", None),
        ("platform_admin", None),
        ("auditor", None),
    ]
    for role, org in callers:
        async with new_client(app) as client:
            await sign_in(client, (await make_user(database, org=org, roles=(role,))).email)
            response = await client.get(COVERAGE)
        assert response.status_code == 403, role
        [event] = await audit_events(database, request_id=response.headers["X-Request-ID"])
        assert (event.action, event.outcome) == ("contact.coverage", "denied"), role
    credentials = await make_api_client(database, org=entity, scopes=("contacts:read",))
    async with await bearer_http(app, credentials) as machine:
        assert (await machine.get(COVERAGE)).status_code == 403
    async with new_client(app) as anonymous:
        assert (await anonymous.get(COVERAGE)).status_code == 401
