"""Finding the right door: filters, words, sorting by State, pages, and the audience filter."""

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import audit_events, make_org, make_user, new_client, sign_in

# (State index, kind, authority, languages, notes after the marker, audience)
ENTRIES = [
    (
        0,
        "asset_freeze",
        "Ministry of Finance Sanctions Office",
        ["en", "fr"],
        "Send requests through the diplomatic channel.",
        "secretariat",
    ),
    (0, "police_24_7", "National Police Bureau", ["en"], "Urgent: telephone first.", "compact"),
    (
        1,
        "mla_central_authority",
        "Ministry of Justice International Cooperation",
        ["es"],
        "Requests in Spanish only.",
        "member_states",
    ),
    (
        1,
        "financial_intelligence_unit",
        "Unidad de Analisis Financiero",
        ["es", "en"],
        "",
        "compact",
    ),
    (2, "asset_freeze", "Treasury Sanctions Unit", ["ar", "en"], "", "member_states"),
]


@dataclass
class Found:
    """Three States with five entries whose notes all carry `marker`, a word no other
    test's entry has: `q=marker` narrows the shared database to this test's entries."""

    states: list[Organization]
    marker: str
    ids: list[str] = field(default_factory=list)  # in the order of ENTRIES
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __getitem__(self, who: str) -> httpx.AsyncClient:
        return self.clients[who]

    async def find(self, who: str = "analyst", **params: Any) -> list[str]:
        """The ids `who` finds among this test's entries, in the order listed."""
        response = await self[who].get(
            "/api/v1/contact-points", params={"q": self.marker, "limit": 200} | params
        )
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    def of(self, *indexes: int) -> set[str]:
        return {self.ids[index] for index in indexes}


async def _signed_in(app: FastAPI, database: Database, role: str, org: Any) -> httpx.AsyncClient:
    client = new_client(app)
    await sign_in(client, (await make_user(database, org=org, roles=(role,))).email)
    return client


@pytest.fixture
async def found(app: FastAPI, database: Database) -> AsyncIterator[Found]:
    states = [await make_org(database) for _ in range(3)]
    world = Found(states, f"mk{secrets.token_hex(5)}")
    entity = await make_org(database, kind="compact_entity")
    for who, role, org in (
        ("analyst", "cted_analyst", None),
        ("state", "state_focal_point", states[0]),
        ("entity", "entity_focal_point", entity),
    ):
        world.clients[who] = await _signed_in(app, database, role, org)
    for state, kind, authority, languages, notes, audience in ENTRIES:
        created = await world["analyst"].post(
            "/api/v1/contact-points",
            json={
                "state": states[state].code,
                "kind": kind,
                "authority": authority,
                "email": "door@gov.example.org",
                "languages": languages,
                "notes": f"{world.marker} {notes}",
                "audience": audience,
            },
        )
        assert created.status_code == 201, created.text
        world.ids.append(created.json()["id"])
    yield world
    for client in world.clients.values():
        await client.aclose()


async def test_filters_by_state_kind_and_language(found: Found) -> None:
    first, second = found.states[0], found.states[1]
    assert set(await found.find(q=None, state=first.code)) == found.of(0, 1)
    assert set(await found.find(q=None, state=second.code.lower())) == found.of(2, 3)
    assert set(await found.find(kind="asset_freeze")) == found.of(0, 4)
    assert set(await found.find(language="es")) == found.of(2, 3)
    assert set(await found.find(language="FR")) == found.of(0)
    assert set(await found.find(language="en", kind="asset_freeze")) == found.of(0, 4)
    assert await found.find(language="de") == []
    assert set(await found.find(state=first.code, language="en")) == found.of(0, 1)


async def test_words_match_the_start_of_words_in_authorities_and_notes(found: Found) -> None:
    searches = {
        "sanction": found.of(0, 4),
        "SANCTIONS office": found.of(0),
        "financ": found.of(0, 3),
        "diplomatic": found.of(0),
        "urgent telephone": found.of(1),
        "spanish": found.of(2),
        "justice ministry": found.of(2),
        "ministry": found.of(0, 2),
        "anctions": set(),  # the middle of a word is no word's start
        "embassy": set(),
    }
    for words, expected in searches.items():
        assert set(await found.find(q=f"{found.marker} {words}")) == expected, words


async def test_search_syntax_in_words_is_only_words(found: Found) -> None:
    for q in ('sanctions" OR "x', "sanct* NEAR(office)", "-finance", "ministry:*", "!!! ***"):
        response = await found["analyst"].get(
            "/api/v1/contact-points", params={"q": f"{found.marker} {q}"}
        )
        assert response.status_code == 200, (q, response.text)
    assert set(await found.find(q=f"{found.marker} (ministry) & !!!")) == found.of(0, 2)


async def test_the_scope_still_applies_to_what_is_found(found: Found) -> None:
    assert set(await found.find("entity")) == found.of(1, 2, 3, 4)
    # Focal points of the first State: their own entries, and others' for every State.
    assert set(await found.find("state")) == found.of(0, 1, 2, 4)
    assert set(await found.find("entity", q=f"{found.marker} sanctions")) == found.of(4)


async def test_sorting_by_state_pages_through_state_kind_and_id(found: Found) -> None:
    codes = {index: found.states[entry[0]].code for index, entry in enumerate(ENTRIES)}
    expected = sorted(
        range(len(ENTRIES)), key=lambda index: (codes[index], ENTRIES[index][1], found.ids[index])
    )
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(len(ENTRIES)):
        params = {"q": found.marker, "sort": "state", "limit": 2} | (
            {"cursor": cursor} if cursor else {}
        )
        page = (await found["analyst"].get("/api/v1/contact-points", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [found.ids[index] for index in expected]


async def test_the_default_order_is_latest_change_first_across_pages(found: Found) -> None:
    edited = await found["analyst"].patch(
        f"/api/v1/contact-points/{found.ids[2]}", json={"working_hours": "24/7"}
    )
    assert edited.status_code == 200
    first = (
        await found["analyst"].get("/api/v1/contact-points", params={"q": found.marker, "limit": 3})
    ).json()
    second = (
        await found["analyst"].get(
            "/api/v1/contact-points",
            params={"q": found.marker, "limit": 3, "cursor": first["next_cursor"]},
        )
    ).json()
    assert second["next_cursor"] is None
    order = [item["id"] for item in first["items"] + second["items"]]
    assert order == [found.ids[i] for i in (2, 4, 3, 1, 0)]


async def test_an_audience_filter_beyond_the_callers_reach_is_403(
    found: Found, database: Database
) -> None:
    assert set(await found.find("entity", audience="compact")) == found.of(1, 3)
    assert set(await found.find("entity", audience="member_states")) == found.of(2, 4)
    for path in ("/api/v1/contact-points", "/api/v1/contact-points/export"):
        refused = await found["entity"].get(path, params={"audience": "secretariat"})
        assert refused.status_code == 403, refused.text
        [event] = await audit_events(database, request_id=refused.headers["X-Request-ID"])
        assert (event.action, event.outcome) == ("contact.read", "denied")
        assert json.loads(event.details)["status"] == 403
    # A State reaches its own entries of any audience, and only those of `secretariat`.
    assert set(await found.find("state", audience="secretariat")) == found.of(0)
    assert set(await found.find("analyst", audience="secretariat")) == found.of(0)


async def test_malformed_filters_are_422(found: Found) -> None:
    bad = [
        {"kind": "embassy"},
        {"language": "eng"},
        {"language": "e"},
        {"state": "ZZZNOSUCH"},
        {"stale": "sometimes"},
        {"audience": "public"},
        {"sort": "name"},
        {"limit": 0},
        {"limit": 201},
        {"cursor": "not-a-cursor"},
        {"q": "x" * 201},
    ]
    for params in bad:
        response = await found["analyst"].get("/api/v1/contact-points", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"], params
