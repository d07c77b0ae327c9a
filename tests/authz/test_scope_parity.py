"""For each resource, what its list shows and what its single-object read allows agree."""

import random

import httpx
import pytest
from fastapi import FastAPI

from ctcp.core.db import Database
from tests.factories import make_org, make_user, new_client, sign_in

# (resource list path, id key, detail path template, roles to compare)
RESOURCES = [
    (
        "/api/v1/organizations",
        "/api/v1/organizations/{id}",
        ("state_focal_point", "entity_focal_point", "cted_analyst", "platform_admin", "auditor"),
    ),
    ("/api/v1/users", "/api/v1/users/{id}", ("platform_admin", "auditor", "state_focal_point")),
]


async def _all_ids(client: httpx.AsyncClient, path: str) -> set[str] | None:
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=params)
        if response.status_code == 403:
            return None
        body = response.json()
        ids |= {item["id"] for item in body["items"]}
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.parametrize(("list_path", "detail_path", "roles"), RESOURCES)
async def test_list_and_detail_agree_on_random_objects(
    app: FastAPI, database: Database, list_path: str, detail_path: str, roles: tuple[str, ...]
) -> None:
    rng = random.Random(7)
    candidates = [
        str((await make_org(database, kind=rng.choice(["member_state", "compact_entity"]))).id)
        for _ in range(4)
    ]
    candidates += [str((await make_user(database)).id) for _ in range(4)]
    for role in roles:
        user = await make_user(database, roles=(role,))
        async with new_client(app) as client:
            await sign_in(client, user.email)
            listed = await _all_ids(client, list_path)
            for object_id in rng.sample(candidates, 6):
                status = (await client.get(detail_path.format(id=object_id))).status_code
                if listed is None:
                    assert status == 403, (role, object_id)
                else:
                    assert (object_id in listed) == (status == 200), (role, object_id, status)
