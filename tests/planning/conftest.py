"""The world of technical assistance (two States, two Compact entities, CTED, each role
signed in), with helpers for activities."""

from typing import Any

import httpx

from tests.assistance.conftest import Assist, assist

__all__ = ["activity_body", "assist", "create_activity"]


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


async def create_activity(world: Assist, who: str = "entity", **changes: Any) -> dict[str, Any]:
    client: httpx.AsyncClient = world[who]
    created = await client.post(
        "/api/v1/activities", json=activity_body(world.state.code, **changes)
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body
