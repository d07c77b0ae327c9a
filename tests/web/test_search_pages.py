"""The search page: scoped hits grouped by kind, never text outside the reader's scope."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.core.db import Database
from ctcp.search.pages import highlighted
from tests.factories import audit_events, decide, make_org, make_user, new_client, sign_in
from tests.web.conftest import Reader, reader

ROLES = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
KIND_OF = {"state_focal_point": "member_state", "entity_focal_point": "compact_entity"}
SEARCHERS = {"state_focal_point", "entity_focal_point", "cted_analyst", "consent_officer"}


@dataclass
class World:
    state: Any
    other: Any
    report: dict[str, Any]
    other_report: dict[str, Any]
    publication_id: str
    tag: str

    def marker(self, name: str) -> str:
        return f"zq{self.tag}{name}"


async def _api_client(app: FastAPI, database: Database, role: str) -> httpx.AsyncClient:
    client = new_client(app)
    await sign_in(client, (await make_user(database, roles=(role,))).email)
    return client


async def _report(
    analyst: httpx.AsyncClient, state: str, title: str, sections: list[dict[str, str]]
) -> dict[str, Any]:
    created = await analyst.post(
        "/api/v1/reports",
        json={
            "state": state,
            "title": title,
            "kind": "comprehensive",
            "visit_start": "2026-02-02",
            "visit_end": "2026-02-05",
            "sections": sections,
        },
    )
    assert created.status_code == 201, created.text
    report: dict[str, Any] = created.json()
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    return report


@pytest.fixture
async def world(app: FastAPI, database: Database) -> World:
    """State A's report, its legislation section consented to the Compact; State B's report."""
    state, other = await make_org(database), await make_org(database)
    tag = state.code.lower()
    world = World(state, other, {}, {}, "", tag)
    analyst = await _api_client(app, database, "cted_analyst")
    world.report = await _report(
        analyst,
        state.code,
        f"Visit to {state.code}",
        [
            {
                "area": "legislation",
                "title": "Legislation",
                "body": f"Consented finding {world.marker('open')} <script>alert(1)</script>.",
            },
            {
                "area": "human_rights",
                "title": "Human rights",
                "body": f"Unconsented finding {world.marker('closed')} {world.marker('hidden')}.",
            },
        ],
    )
    world.other_report = await _report(
        analyst,
        other.code,
        f"Confidential visit {other.code}",
        [{"area": "legislation", "title": "Legislation", "body": f"{world.marker('other')}."}],
    )
    officer = await _api_client(app, database, "consent_officer")
    consented = [s["id"] for s in world.report["sections"] if s["area"] == "legislation"]
    response = await decide(
        officer,
        f"/api/v1/reports/{world.report['id']}/consent",
        {"scope": "partial", "sections": consented, "audience": "compact", "reference": "NV"},
    )
    assert response.status_code == 201, response.text
    listed = await analyst.get("/api/v1/publications", params={"state": state.code})
    world.publication_id = listed.json()["items"][0]["id"]
    await analyst.aclose()
    await officer.aclose()
    return world


async def _person(app: FastAPI, database: Database, role: str, **kwargs: Any) -> Reader:
    return await reader(
        app, database, roles=(role,), kind=KIND_OF.get(role, "secretariat"), **kwargs
    )


@pytest.mark.parametrize("role", ROLES)
async def test_search_page_answers_each_role(app: FastAPI, database: Database, role: str) -> None:
    person = await _person(app, database, role)
    for path in ("/portal/search", "/portal/search?q=findings"):
        response = await person.get(path)
        assert response.status_code == (200 if role in SEARCHERS else 403), (role, path)
    if role in SEARCHERS:
        too_short = await person.get("/portal/search?q=a")
        assert too_short.status_code == 422 and "Type at least two characters." in too_short.text


async def test_anonymous_is_sent_to_sign_in(app: FastAPI) -> None:
    async with new_client(app) as anonymous:
        response = await anonymous.get("/portal/search?q=findings")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/portal/sign-in?next=/portal/search")


async def test_the_state_finds_its_full_report_never_another_states(
    app: FastAPI, database: Database, world: World
) -> None:
    focal = await _person(app, database, "state_focal_point", org=world.state)
    own = await focal.get(f"/portal/search?q={world.marker('hidden')}")
    assert own.status_code == 200
    assert f'href="/portal/reports/{world.report["id"]}#section-' in own.text
    assert f"Visit to {world.state.code}" in own.text
    assert f"<mark>{world.marker('hidden')}</mark>" in own.text
    other = await focal.get(f"/portal/search?q={world.marker('other')}")
    assert other.status_code == 200
    assert world.other_report["id"] not in other.text
    assert f"Confidential visit {world.other.code}" not in other.text
    assert "Nothing you may read matches" in other.text
    broad = await focal.get("/portal/search?q=Confidential visit")
    assert f"Confidential visit {world.other.code}" not in broad.text.replace(
        'value="Confidential visit"', ""
    )


async def test_an_entity_finds_consented_text_only(
    app: FastAPI, database: Database, world: World
) -> None:
    entity = await _person(app, database, "entity_focal_point")
    found = await entity.get(f"/portal/search?q={world.marker('open')}")
    assert found.status_code == 200
    assert f'href="/portal/publications/{world.publication_id}#section-' in found.text
    assert f"/portal/reports/{world.report['id']}" not in found.text
    assert f"<mark>{world.marker('open')}</mark>" in found.text
    # The section's text is shown escaped: no markup from a report reaches the page.
    assert "<script>" not in found.text
    hidden = await entity.get(f"/portal/search?q={world.marker('closed')}")
    assert hidden.status_code == 200 and "Nothing you may read matches" in hidden.text
    assert world.marker("hidden") not in hidden.text
    assert "Unconsented finding" not in hidden.text
    both = await entity.get("/portal/search?q=finding")
    assert world.marker("hidden") not in both.text and "Unconsented" not in both.text
    events = await audit_events(database, action="search", actor_user_id=entity.user.id)
    assert [world.marker("open") in event.details for event in events][:1] == [True]


async def test_the_secretariat_gets_reports_and_publications_grouped(
    app: FastAPI, database: Database, world: World
) -> None:
    analyst = await _person(app, database, "cted_analyst")
    page = await analyst.get(f"/portal/search?q={world.marker('open')}")
    assert page.status_code == 200
    assert 'id="hits-report"' in page.text and 'id="hits-publication"' in page.text
    assert page.text.index('id="hits-report"') < page.text.index('id="hits-publication"')


def test_snippets_are_escaped_except_the_search_marks() -> None:
    html = highlighted('a <script>x</script> & "<mark>word</mark>"')
    assert str(html) == "a &lt;script&gt;x&lt;/script&gt; &amp; &#34;<mark>word</mark>&#34;"
