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


async def test_report_list_and_detail_agree_for_every_reader(
    app: FastAPI, database: Database
) -> None:
    rng = random.Random(11)
    states = [await make_org(database, kind="member_state") for _ in range(3)]
    analyst = await make_user(database, roles=("cted_analyst",))
    report_ids = []
    async with new_client(app) as writer:
        await sign_in(writer, analyst.email)
        for _ in range(6):
            state = rng.choice(states)
            created = await writer.post(
                "/api/v1/reports",
                json={
                    "state": state.code,
                    "title": "Visit",
                    "kind": "focused",
                    "visit_start": "2026-01-05",
                    "visit_end": "2026-01-06",
                    "sections": [{"area": "legislation", "title": "L", "body": "B"}],
                },
            )
            report_ids.append(created.json()["id"])
    readers = [("state_focal_point", state) for state in states] + [
        ("cted_analyst", None),
        ("consent_officer", None),
        ("entity_focal_point", None),
    ]
    for role, org in readers:
        user = await make_user(
            database,
            org=org,
            roles=(role,),
            kind="compact_entity" if role == "entity_focal_point" else "member_state",
        )
        async with new_client(app) as client:
            await sign_in(client, user.email)
            listed = await _all_ids(client, "/api/v1/reports")
            for report_id in report_ids:
                status = (await client.get(f"/api/v1/reports/{report_id}")).status_code
                if listed is None:
                    assert status == 403, (role, report_id)
                else:
                    assert (report_id in listed) == (status == 200), (role, report_id, status)
                    assert status in (200, 404)
