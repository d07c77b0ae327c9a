"""The change feed's world: the technical-assistance world, and a reader that follows
the feed as a downstream system would."""

from typing import Any

import httpx

from tests.assistance.conftest import Assist, assist

__all__ = ["assist", "follow", "head_cursor"]


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


async def head_cursor(world: Assist, who: str = "entity") -> str:
    """Where the feed stands now, for `who` (what came before is not this test's)."""
    _, cursor = await follow(world[who], None)
    return cursor
