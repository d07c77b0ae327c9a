"""A small world for technical assistance: two States, two Compact entities, CTED."""

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from ctcp.core.db import Database
from ctcp.notifications.models import Notification
from ctcp.organizations.models import Organization
from tests.factories import decide, make_org, make_user, new_client, sign_in


@dataclass
class Assist:
    app: FastAPI
    database: Database
    state: Organization
    other_state: Organization
    entity: Organization
    other_entity: Organization
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __getitem__(self, who: str) -> httpx.AsyncClient:
        return self.clients[who]

    async def adopted_report(self, state: Organization | None = None) -> dict[str, Any]:
        """An adopted report with two sections, each with one recommendation."""
        created = await self["analyst"].post(
            "/api/v1/reports",
            json={
                "state": (state or self.state).code,
                "title": "Assessment visit",
                "kind": "comprehensive",
                "visit_start": "2026-02-02",
                "visit_end": "2026-02-05",
                "sections": [
                    {
                        "area": area,
                        "title": area.title(),
                        "body": f"Findings on {area}.",
                        "recommendations": [{"text": f"Improve {area}.", "priority": "high"}],
                    }
                    for area in ("border_management", "counter_financing")
                ],
            },
        )
        assert created.status_code == 201, created.text
        report: dict[str, Any] = created.json()
        adopted = await self["analyst"].post(f"/api/v1/reports/{report['id']}/adopt")
        assert adopted.status_code == 200, adopted.text
        return report

    async def need(
        self, state: Organization | None = None, area: str = "border_management", **extra: Any
    ) -> dict[str, Any]:
        """A need from the State's own request (shared by the State's needs-sharing consent)."""
        body = {
            "state": (state or self.state).code,
            "area": area,
            "description": "Passenger data systems at land borders.",
            "priority": "high",
            "source": "state_request",
        } | extra
        created = await self["analyst"].post("/api/v1/needs", json=body)
        assert created.status_code == 201, created.text
        need: dict[str, Any] = created.json()
        return need

    async def share_needs(self, state: Organization | None = None) -> None:
        recorded = await decide(
            self["officer"],
            f"/api/v1/states/{(state or self.state).code}/needs-consent",
            {"share_needs": True, "reference": "NV/2026/11"},
        )
        assert recorded.status_code == 201, recorded.text

    async def file(self, *needs: dict[str, Any], who: str = "state") -> dict[str, Any]:
        filed = await self[who].post(
            "/api/v1/assistance-requests",
            json={
                "title": "Support for border management",
                "description": "Advance passenger information.",
                "need_ids": [n["id"] for n in needs],
            }
            | ({"state": self.state.code} if who == "analyst" else {}),
        )
        assert filed.status_code == 201, filed.text
        request: dict[str, Any] = filed.json()
        return request

    async def move(self, request_id: str, to: str, who: str = "analyst", **extra: Any) -> None:
        moved = await self[who].post(
            f"/api/v1/assistance-requests/{request_id}/transition", json={"to": to} | extra
        )
        assert moved.status_code == 200, moved.text

    async def circulated(self, *needs: dict[str, Any]) -> dict[str, Any]:
        """A request for the State, circulated (its needs shared beforehand by the caller)."""
        request = await self.file(*(needs or (await self.need(),)))
        await self.move(request["id"], "under_review")
        await self.move(request["id"], "circulated")
        return request

    async def offer(self, request_id: str, who: str = "entity", **extra: Any) -> httpx.Response:
        return await self[who].post(
            f"/api/v1/assistance-requests/{request_id}/offers",
            json={
                "programme": "Countering Terrorist Travel",
                "description": "API/PNR systems and training.",
                "timeline": "2027 Q1 - 2027 Q4",
            }
            | extra,
        )

    async def notifications(self, **filters: Any) -> list[Notification]:
        async with self.database.transaction() as session:
            statement = select(Notification)
            for name, value in filters.items():
                if name.endswith("_id") and isinstance(value, str):
                    value = uuid.UUID(value)
                statement = statement.where(col(getattr(Notification, name)) == value)
            return list((await session.exec(statement)).all())


async def signed_in(app: FastAPI, database: Database, role: str, org: Any) -> httpx.AsyncClient:
    user = await make_user(database, org=org, roles=(role,))
    client = new_client(app)
    await sign_in(client, user.email)
    return client


async def build_world(app: FastAPI, database: Database) -> Assist:
    """Two States, two Compact entities and the Secretariat, each role signed in."""
    world = Assist(
        app,
        database,
        state=await make_org(database),
        other_state=await make_org(database),
        entity=await make_org(database, kind="compact_entity"),
        other_entity=await make_org(database, kind="compact_entity"),
    )
    secretariat = await make_org(database, kind="secretariat")
    for name, role, org in (
        ("analyst", "cted_analyst", secretariat),
        ("officer", "consent_officer", secretariat),
        ("admin", "platform_admin", secretariat),
        ("auditor", "auditor", secretariat),
        ("state", "state_focal_point", world.state),
        ("other_state", "state_focal_point", world.other_state),
        ("entity", "entity_focal_point", world.entity),
        ("other_entity", "entity_focal_point", world.other_entity),
    ):
        world.clients[name] = await signed_in(app, database, role, org)
    world.clients["anonymous"] = new_client(app)
    return world


@pytest.fixture
async def assist(app: FastAPI, database: Database) -> Any:
    world = await build_world(app, database)
    yield world
    for client in world.clients.values():
        await client.aclose()
