"""Scoped search: a hit or a snippet never comes from an unconsented section."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.core.db import Database
from tests.factories import audit_events, decide, make_org, make_user, new_client, sign_in

AREAS = ["legislation", "counter_financing", "law_enforcement", "human_rights"]


async def _client(app: FastAPI, database: Database, role: str, **kw: Any) -> httpx.AsyncClient:
    user = await make_user(database, roles=(role,), **kw)
    client = new_client(app)
    await sign_in(client, user.email)
    return client


@pytest.fixture
async def world(app: FastAPI, database: Database) -> dict[str, Any]:
    state, other = await make_org(database), await make_org(database)
    tag = state.code.lower()
    markers = {area: f"zq{tag}{area.replace('_', '')}" for area in AREAS}
    analyst = await _client(app, database, "cted_analyst")
    report = (
        await analyst.post(
            "/api/v1/reports",
            json={
                "state": state.code,
                "title": "Visit",
                "kind": "comprehensive",
                "visit_start": "2026-02-02",
                "visit_end": "2026-02-05",
                "sections": [
                    {"area": a, "title": a, "body": f"Findings on {a}: {markers[a]} noted."}
                    for a in AREAS
                ],
            },
        )
    ).json()
    await analyst.post(f"/api/v1/reports/{report['id']}/adopt")
    officer = await _client(app, database, "consent_officer")
    consented = [s["id"] for s in report["sections"] if s["area"] == "legislation"]
    await decide(
        officer,
        f"/api/v1/reports/{report['id']}/consent",
        {
            "scope": "partial",
            "sections": consented,
            "audience": "compact",
            "reference": "NV/7",
        },
    )
    return {
        "markers": markers,
        "report": report,
        "clients": {
            "analyst": analyst,
            "state": await _client(app, database, "state_focal_point", org=state),
            "other_state": await _client(app, database, "state_focal_point", org=other),
            "entity": await _client(app, database, "entity_focal_point", kind="compact_entity"),
        },
    }


async def _search(client: httpx.AsyncClient, q: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/search", params={"q": q})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_an_entity_finds_only_consented_text(world: dict[str, Any]) -> None:
    entity = world["clients"]["entity"]
    markers = world["markers"]
    hits = await _search(entity, markers["legislation"])
    assert [(h["type"], h["area"]) for h in hits] == [("publication", "legislation")]
    assert "<mark>" in hits[0]["snippet"] and markers["legislation"] in hits[0]["snippet"]
    for area in ("counter_financing", "law_enforcement", "human_rights"):
        assert await _search(entity, markers[area]) == []
    everything = await _search(entity, "Findings noted")
    text = repr(everything)
    for area in ("counter_financing", "law_enforcement", "human_rights"):
        assert markers[area] not in text


async def test_the_state_and_the_secretariat_search_the_full_report(world: dict[str, Any]) -> None:
    markers = world["markers"]
    for who in ("state", "analyst"):
        hits = await _search(world["clients"][who], markers["human_rights"])
        assert [(h["type"], h["id"]) for h in hits] == [("report", world["report"]["id"])]


async def test_another_state_finds_nothing_consented_to_the_compact_only(
    world: dict[str, Any],
) -> None:
    for marker in world["markers"].values():
        assert await _search(world["clients"]["other_state"], marker) == []


async def test_withdrawal_removes_hits_at_once(world: dict[str, Any]) -> None:
    marker = world["markers"]["legislation"]
    entity = world["clients"]["entity"]
    assert await _search(entity, marker)
    response = await world["clients"]["state"].post(
        f"/api/v1/reports/{world['report']['id']}/consent/withdraw", json={"reason": "No"}
    )
    assert response.status_code == 201
    assert await _search(entity, marker) == []


@pytest.mark.parametrize("q", ['" OR *', "NEAR(a b)", "title:x", "a AND NOT", "«»", "---"])
async def test_query_syntax_is_never_interpreted(world: dict[str, Any], q: str) -> None:
    response = await world["clients"]["entity"].get("/api/v1/search", params={"q": q})
    assert response.status_code == 200


async def test_searches_are_audited(world: dict[str, Any], database: Database) -> None:
    await _search(world["clients"]["entity"], world["markers"]["legislation"])
    events = await audit_events(database, action="search")
    assert world["markers"]["legislation"] in events[-1].details


async def test_a_too_short_query_is_422(world: dict[str, Any]) -> None:
    response = await world["clients"]["entity"].get("/api/v1/search", params={"q": "a"})
    assert response.status_code == 422
