"""The change feed's world: the technical-assistance world, and a reader that follows
the feed as a downstream system would."""

import json
from typing import Any

import httpx
from sqlmodel import col, select

from ctcp.changes.models import FeedHead
from ctcp.changes.service import encode_cursor
from ctcp.organizations.models import Organization
from tests.assistance.conftest import Assist, assist
from tests.factories import bearer_http, make_api_client, make_org, make_user, new_client, sign_in

__all__ = [
    "Assist",
    "assist",
    "details",
    "follow",
    "further_entity",
    "head_cursor",
    "mirror",
    "ops",
    "system",
]

READ_SCOPES = (
    "publications:read",
    "needs:read",
    "requests:read",
    "contacts:read",
    "activities:read",
)


async def follow(
    client: httpx.AsyncClient, cursor: str | None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every item after `cursor`, page after page, and the cursor to resume from."""
    items: list[dict[str, Any]] = []
    while True:
        response = await client.get(
            "/api/v1/changes", params={k: v for k, v in ({"cursor": cursor} | params).items() if v}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor


async def head_cursor(world: Assist) -> str:
    """Where the feed stands now (what came before is not this test's): the cursor a
    reader holds once it has read everything committed so far."""
    async with world.database.sessionmaker() as session:
        head = (await session.exec(select(FeedHead).where(col(FeedHead.id) == 1))).one()
        return encode_cursor(head.last_seq)


def ops(items: list[dict[str, Any]], object_id: str) -> list[str]:
    """The operations served for one object, in feed order."""
    return [item["op"] for item in items if item["id"] == object_id]


def mirror(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a downstream copy holds after applying `items` in order: id -> object."""
    copy: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["op"] == "upsert":
            copy[item["id"]] = item["object"]
        else:
            copy.pop(item["id"], None)
    return copy


async def system(world: Assist, *scopes: str, name: str | None = None) -> httpx.AsyncClient:
    """An API client of the world's entity holding `scopes` (every read scope by default),
    kept among the world's clients so that it is closed with them."""
    credentials = await make_api_client(
        world.database, org=world.entity, scopes=scopes or READ_SCOPES
    )
    http = await bearer_http(world.app, credentials)
    world.clients[name or f"system:{','.join(scopes or READ_SCOPES)}"] = http
    return http


async def further_entity(world: Assist, name: str) -> tuple[httpx.AsyncClient, Organization]:
    """The signed-in focal point of one more Compact entity (kept as `world[name]`), and
    its organization."""
    organization = await make_org(world.database, kind="compact_entity")
    user = await make_user(world.database, org=organization, roles=("entity_focal_point",))
    http = new_client(world.app)
    await sign_in(http, user.email)
    world.clients[name] = http
    return http, organization


def details(event: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(event.details)
    return loaded
