"""Consent and publications: no unconsented byte reaches anyone; withdrawal is immediate."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ctcp.core.clock import clock
from ctcp.core.db import Database
from tests.factories import audit_events, decide, make_org, make_user, new_client, sign_in

AREAS = ["legislation", "counter_financing", "law_enforcement", "human_rights"]


def marker(area: str) -> str:
    """Unique to this test's State: other tests' publications never match it."""
    return f"MARKER-{CURRENT_STATE[0]}-{area.upper()}-SECRET"


CURRENT_STATE = [""]


async def _client(
    app: FastAPI, database: Database, role: str, org: Any = None, kind: str = "member_state"
) -> httpx.AsyncClient:
    user = await make_user(database, org=org, roles=(role,), kind=kind)
    client = new_client(app)
    await sign_in(client, user.email)
    return client


@pytest.fixture
async def world(app: FastAPI, database: Database) -> dict[str, Any]:
    state, other_state = await make_org(database), await make_org(database)
    CURRENT_STATE[0] = state.code
    clients = {
        "analyst": await _client(app, database, "cted_analyst"),
        "officer": await _client(app, database, "consent_officer"),
        "state": await _client(app, database, "state_focal_point", org=state),
        "other_state": await _client(app, database, "state_focal_point", org=other_state),
        "entity": await _client(app, database, "entity_focal_point", kind="compact_entity"),
        "anonymous": new_client(app),
    }
    created = await clients["analyst"].post(
        "/api/v1/reports",
        json={
            "state": state.code,
            "title": "Assessment",
            "kind": "comprehensive",
            "visit_start": "2026-02-02",
            "visit_end": "2026-02-05",
            "sections": [{"area": a, "title": a.title(), "body": marker(a)} for a in AREAS],
        },
    )
    report = created.json()
    await clients["analyst"].post(f"/api/v1/reports/{report['id']}/adopt")
    return {
        "state": state,
        "report": report,
        "clients": clients,
        "sections": {s["area"]: s["id"] for s in report["sections"]},
    }


async def _consent(world: dict[str, Any], who: str = "officer", **decision: Any) -> httpx.Response:
    decision.setdefault("reference", "NV/2026/42")
    return await decide(
        world["clients"][who], f"/api/v1/reports/{world['report']['id']}/consent", decision
    )


async def _everything_readable(client: httpx.AsyncClient, state_code: str) -> str:
    """Every read path's text for this caller: lists, details, public, errors."""
    texts = []
    for path in (
        "/api/v1/publications",
        "/api/v1/public/publications",
        f"/api/v1/publications?state={state_code}",
    ):
        response = await client.get(path)
        texts.append(response.text)
        if response.status_code == 200:
            for item in response.json()["items"]:
                texts.append((await client.get(f"/api/v1/publications/{item['id']}")).text)
                texts.append((await client.get(f"/api/v1/public/publications/{item['id']}")).text)
    return "\n".join(texts)


async def test_partial_consent_publishes_exactly_the_consented_sections(
    world: dict[str, Any], database: Database
) -> None:
    chosen = [world["sections"]["legislation"], world["sections"]["human_rights"]]
    response = await _consent(world, scope="partial", sections=chosen, audience="compact")
    assert response.status_code == 201, response.text
    clients = world["clients"]
    for who in ("entity", "other_state", "anonymous", "state", "analyst", "officer"):
        seen = await _everything_readable(clients[who], world["state"].code)
        for area in ("counter_financing", "law_enforcement"):
            assert marker(area) not in seen, (who, area)
    entity_view = await _everything_readable(clients["entity"], world["state"].code)
    assert marker("legislation") in entity_view and marker("human_rights") in entity_view
    # Compact audience: other States and the public see nothing of it.
    assert marker("legislation") not in await _everything_readable(
        clients["other_state"], world["state"].code
    )
    assert marker("legislation") not in await _everything_readable(
        clients["anonymous"], world["state"].code
    )
    # The State's own focal points see their State's publication.
    assert marker("legislation") in await _everything_readable(
        clients["state"], world["state"].code
    )
    events = await audit_events(database, object_id=world["report"]["id"], action="consent.record")
    assert '"before": null' in events[-1].details and '"scope": "partial"' in events[-1].details


async def test_audiences_widen_in_order(world: dict[str, Any]) -> None:
    await _consent(world, scope="full", audience="member_states")
    clients = world["clients"]
    assert marker("legislation") in await _everything_readable(
        clients["other_state"], world["state"].code
    )
    assert marker("legislation") not in await _everything_readable(
        clients["anonymous"], world["state"].code
    )
    await _consent(world, scope="full", audience="public")
    assert marker("legislation") in await _everything_readable(
        clients["anonymous"], world["state"].code
    )


async def test_withdrawal_by_the_state_takes_effect_at_once(
    world: dict[str, Any], database: Database
) -> None:
    await _consent(world, scope="full", audience="public")
    clients = world["clients"]
    publication = (
        await clients["entity"].get("/api/v1/publications", params={"state": world["state"].code})
    ).json()["items"][0]
    withdrawn = await clients["state"].post(
        f"/api/v1/reports/{world['report']['id']}/consent/withdraw", json={"reason": "Cabinet"}
    )
    assert withdrawn.status_code == 201
    for who in ("entity", "other_state", "anonymous", "analyst"):
        assert marker("legislation") not in await _everything_readable(
            clients[who], world["state"].code
        )
        assert (
            await clients[who].get(f"/api/v1/publications/{publication['id']}")
        ).status_code in (401, 404)
    consent = (
        await clients["officer"].get(f"/api/v1/reports/{world['report']['id']}/consent")
    ).json()
    assert consent["current"]["withdrawal"] is True and len(consent["history"]) == 2
    events = await audit_events(
        database, object_id=world["report"]["id"], action="consent.withdraw"
    )
    assert '"revoked_publications": 1' in events[-1].details


async def test_a_state_may_only_narrow(world: dict[str, Any]) -> None:
    s = world["sections"]
    await _consent(
        world,
        scope="partial",
        sections=[s["legislation"], s["human_rights"]],
        audience="member_states",
        share_needs=False,
    )
    broader = [
        {"scope": "full", "audience": "member_states"},
        {
            "scope": "partial",
            "sections": [s["legislation"], s["law_enforcement"]],
            "audience": "member_states",
        },
        {"scope": "partial", "sections": [s["legislation"]], "audience": "public"},
        {
            "scope": "partial",
            "sections": [s["legislation"]],
            "audience": "member_states",
            "share_needs": True,
        },
    ]
    for decision in broader:
        assert (await _consent(world, who="state", **decision)).status_code == 403, decision
    narrower = await _consent(
        world, who="state", scope="partial", sections=[s["legislation"]], audience="compact"
    )
    assert narrower.status_code == 201
    other = await _consent(world, who="other_state", scope="none")
    assert other.status_code == 404


@pytest.mark.parametrize(
    "decision",
    [
        {"scope": "partial", "sections": []},
        {"scope": "full", "sections": ["SECTION"]},
        {"scope": "partial", "sections": ["00000000-0000-0000-0000-000000000000"]},
        {"scope": "full", "expires_at": "2000-01-01T00:00:00Z"},
        {"scope": "full", "reference": ""},
        {"scope": "everything"},
        {"scope": "full", "audience": "galaxy"},
    ],
)
async def test_bad_decisions_are_422_and_nothing_changes(
    world: dict[str, Any], decision: dict[str, Any]
) -> None:
    if decision.get("sections") == ["SECTION"]:
        decision = decision | {"sections": [world["sections"]["legislation"]]}
    response = await decide(
        world["clients"]["officer"],
        f"/api/v1/reports/{world['report']['id']}/consent",
        {"reference": "NV/1"} | decision,
    )
    assert response.status_code == 422, response.text
    consent = (
        await world["clients"]["officer"].get(f"/api/v1/reports/{world['report']['id']}/consent")
    ).json()
    assert consent == {"current": None, "history": []}


async def test_a_draft_cannot_be_consented(world: dict[str, Any]) -> None:
    draft = (
        await world["clients"]["analyst"].post(
            "/api/v1/reports",
            json={
                "state": world["state"].code,
                "title": "Draft",
                "kind": "focused",
                "visit_start": "2026-02-02",
                "visit_end": "2026-02-03",
                "sections": [{"area": "legislation", "title": "L", "body": "B"}],
            },
        )
    ).json()
    response = await decide(
        world["clients"]["officer"],
        f"/api/v1/reports/{draft['id']}/consent",
        {"scope": "full", "reference": "NV"},
    )
    assert response.status_code == 409


async def test_expired_consent_serves_nothing_without_a_job(world: dict[str, Any]) -> None:
    expires = (clock.now() + timedelta(minutes=10)).isoformat()
    await _consent(world, scope="full", audience="compact", expires_at=expires)
    entity = world["clients"]["entity"]
    assert marker("legislation") in await _everything_readable(entity, world["state"].code)
    clock.advance(timedelta(minutes=11))
    listed = await entity.get("/api/v1/publications", params={"state": world["state"].code})
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert marker("legislation") not in await _everything_readable(entity, world["state"].code)
    consent = (
        await world["clients"]["officer"].get(f"/api/v1/reports/{world['report']['id']}/consent")
    ).json()
    assert consent["current"] is None


async def test_amending_leaves_the_old_versions_publication_as_it_was(
    world: dict[str, Any],
) -> None:
    await _consent(world, scope="full", audience="compact")
    analyst = world["clients"]["analyst"]
    amended = (await analyst.post(f"/api/v1/reports/{world['report']['id']}/amend")).json()
    await analyst.put(
        f"/api/v1/reports/{amended['id']}",
        json={
            "title": "Changed",
            "kind": "comprehensive",
            "visit_start": "2026-02-02",
            "visit_end": "2026-02-05",
            "sections": [{"area": "legislation", "title": "L", "body": "NEW-TEXT"}],
        },
    )
    entity_view = await _everything_readable(world["clients"]["entity"], world["state"].code)
    assert marker("legislation") in entity_view and "NEW-TEXT" not in entity_view


async def test_two_officers_recording_at_once_keep_one_ordered_history(
    app: FastAPI, database: Database, world: dict[str, Any]
) -> None:
    """Withdrawals are never stale; consents that saw no decision are, once one is recorded:
    whatever the order, the history has no gap and no repeated sequence."""
    second = await _client(app, database, "consent_officer")
    path = f"/api/v1/reports/{world['report']['id']}/consent"
    clients = world["clients"] | {"second": second}
    consent = {
        "scope": "full",
        "audience": "member_states",
        "reference": "NV/9",
        "after_sequence": 0,
    }
    responses = await asyncio.gather(
        *[
            clients["officer"].post(f"{path}/withdraw", json={"reason": "Cabinet"})
            if turn % 2
            else clients["second"].post(path, json=consent)
            for turn in range(6)
        ]
    )
    withdrawals, consents = responses[1::2], responses[0::2]
    assert {r.status_code for r in withdrawals} == {201}
    assert {r.status_code for r in consents} <= {201, 409}
    assert sum(r.status_code == 201 for r in consents) <= 1, "one decision saw sequence 0"
    recorded = (await clients["officer"].get(path)).json()
    accepted = sum(r.status_code == 201 for r in responses)
    assert [e["sequence"] for e in recorded["history"]] == list(range(1, accepted + 1))
    live = (
        await clients["analyst"].get("/api/v1/publications", params={"state": world["state"].code})
    ).json()["items"]
    mine = [p for p in live if p["report_id"] == world["report"]["id"]]
    if recorded["current"]["withdrawal"]:
        assert mine == [], "the latest decision is a withdrawal: nothing is published"
    else:
        assert [p["audience"] for p in mine] == ["member_states"]
        assert {sec["id"] for sec in mine[0]["sections"]} == set(world["sections"].values())


async def test_no_reader_gets_the_publication_after_the_withdrawal_commits(
    world: dict[str, Any],
) -> None:
    await _consent(world, scope="full", audience="compact")
    entity = world["clients"]["entity"]
    publication_id = (
        await entity.get("/api/v1/publications", params={"state": world["state"].code})
    ).json()["items"][0]["id"]
    committed = asyncio.Event()
    late_reads: list[int] = []

    async def reader() -> None:
        while True:
            started_after = committed.is_set()
            status = (await entity.get(f"/api/v1/publications/{publication_id}")).status_code
            if started_after:
                late_reads.append(status)
                if len(late_reads) >= 20:
                    return

    async def withdraw() -> None:
        await asyncio.sleep(0.05)
        response = await world["clients"]["state"].post(
            f"/api/v1/reports/{world['report']['id']}/consent/withdraw", json={"reason": "Now"}
        )
        assert response.status_code == 201
        committed.set()

    await asyncio.gather(reader(), reader(), withdraw())
    assert late_reads and set(late_reads) == {404}


async def test_consent_history_is_append_only(world: dict[str, Any], database: Database) -> None:
    await _consent(world, scope="full", audience="compact")
    for statement in ("UPDATE consent_events SET scope = 'full'", "DELETE FROM consent_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.exec(text(statement))  # type: ignore[call-overload]


async def test_publications_filter_by_area_and_year(world: dict[str, Any]) -> None:
    s = world["sections"]
    await _consent(world, scope="partial", sections=[s["legislation"]], audience="compact")
    entity, code = world["clients"]["entity"], world["state"].code
    year = clock.now().year

    async def ids(**params: Any) -> list[str]:
        response = await entity.get("/api/v1/publications", params={"state": code, **params})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    published = await ids()
    assert len(published) == 1
    assert await ids(area="legislation") == published
    assert await ids(area="human_rights") == []
    assert await ids(year=year) == published
    assert await ids(year=year - 1) == []
    assert await ids(area="legislation", year=year) == published
    bad = await entity.get("/api/v1/publications", params={"area": "nonsense"})
    assert bad.status_code == 422
    assert (await entity.get("/api/v1/publications", params={"year": 1800})).status_code == 422


async def test_a_withdrawal_is_never_refused_as_stale(world: dict[str, Any]) -> None:
    """Whatever was recorded since the State looked, its withdrawal takes effect."""
    await _consent(world, scope="full", audience="compact")
    await _consent(world, scope="full", audience="member_states")  # unseen by the State
    path = f"/api/v1/reports/{world['report']['id']}/consent/withdraw"
    withdrawn = await world["clients"]["state"].post(path, json={"reason": "x"})
    assert withdrawn.status_code == 201
    assert withdrawn.json()["withdrawal"] is True
    stale_field = await world["clients"]["state"].post(
        path, json={"reason": "x", "after_sequence": 1}
    )
    assert stale_field.status_code == 422  # not part of a withdrawal


async def test_broadening_without_the_sequence_it_saw_is_422_and_cannot_undo_a_withdrawal(
    world: dict[str, Any], database: Database
) -> None:
    """The State withdraws; a decision that does not say what it saw must not republish."""
    report_id = world["report"]["id"]
    path = f"/api/v1/reports/{report_id}/consent"
    officer, state = world["clients"]["officer"], world["clients"]["state"]
    full = {"scope": "full", "audience": "compact", "reference": "NV/2026/8"}
    assert (await officer.post(path, json=full | {"after_sequence": 0})).status_code == 201
    withdrawn = await state.post(f"{path}/withdraw", json={"reason": "Cabinet decision"})
    assert withdrawn.status_code == 201
    blind = await officer.post(path, json=full)
    assert blind.status_code == 422, blind.text
    assert blind.json()["errors"][0]["loc"] == ["body", "after_sequence"]
    stale = await officer.post(path, json=full | {"after_sequence": 1})
    assert stale.status_code == 409
    consent = (await officer.get(path)).json()
    assert [e["sequence"] for e in consent["history"]] == [1, 2]
    assert consent["history"][-1]["withdrawal"] is True
    entity_view = await _everything_readable(world["clients"]["entity"], world["state"].code)
    assert marker("legislation") not in entity_view
    # Having seen the withdrawal, the officer may publish again on the State's new word.
    seen = await officer.post(path, json=full | {"after_sequence": 2})
    assert seen.status_code == 201, seen.text
    # Narrowing never needs it: it cannot override anything the decider did not see.
    narrowed = await state.post(
        path,
        json={
            "scope": "partial",
            "sections": [world["sections"]["legislation"]],
            "audience": "compact",
        },
    )
    assert narrowed.status_code == 201, narrowed.text


async def test_sharing_needs_without_the_sequence_it_saw_is_422(world: dict[str, Any]) -> None:
    path = f"/api/v1/states/{world['state'].code}/needs-consent"
    officer, state = world["clients"]["officer"], world["clients"]["state"]
    share = {"share_needs": True, "reference": "NV/2026/9"}
    assert (await officer.post(path, json=share | {"after_sequence": 0})).status_code == 201
    assert (await state.post(f"{path}/withdraw", json={"reason": "Elections"})).status_code == 201
    blind = await officer.post(path, json=share)
    assert blind.status_code == 422, blind.text
    assert blind.json()["errors"][0]["loc"] == ["body", "after_sequence"]
    assert (await officer.post(path, json=share | {"after_sequence": 1})).status_code == 409
    history = (await officer.get(path)).json()["history"]
    assert [e["withdrawal"] for e in history] == [False, True]
    assert (await state.post(path, json={"share_needs": False})).status_code == 201
