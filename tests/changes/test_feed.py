"""GET /api/v1/changes as a Compact entity's focal point and its systems see it: each
kind's upserts and revokes, nothing about what the caller could never read, the cursor,
retention, the audit trail and the order of the entries."""

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from ctcp.changes import service as feed_service
from ctcp.changes.models import FeedHead
from ctcp.changes.service import decode_cursor
from ctcp.core.clock import clock
from ctcp.core.db import Database
from tests.assistance.conftest import Assist
from tests.changes.conftest import (
    details,
    follow,
    further_entity,
    head_cursor,
    mirror,
    ops,
    system,
)
from tests.factories import (
    audit_events,
    bearer_http,
    decide,
    make_api_client,
    make_org,
    make_user,
    new_client,
    sign_in,
)


@pytest.fixture(autouse=True)
async def _sweep_mark_back_to_real_time(database: Database) -> AsyncIterator[None]:
    """A test that moved the clock forward and read the feed left the head's sweep mark in
    the future: bring it back to the real time after the test, so that contact points
    turning stale in later tests (found in the window from the mark to now) are not
    taken as already swept."""
    yield
    clock.reset()
    async with database.transaction() as session:
        head = (
            await session.exec(select(FeedHead).where(col(FeedHead.id) == 1).with_for_update())
        ).one()
        now = clock.now()
        if head.swept_until is not None and head.swept_until > now:
            head.swept_until = now
            session.add(head)


# --- helpers -------------------------------------------------------------------------


async def _consent(
    world: Assist, report: dict[str, Any], who: str = "officer", **decision: Any
) -> dict[str, Any]:
    decision.setdefault("reference", "NV/2026/21")
    recorded = await decide(world[who], f"/api/v1/reports/{report['id']}/consent", decision)
    assert recorded.status_code == 201, recorded.text
    decided: dict[str, Any] = recorded.json()
    return decided


async def _live_publication(world: Assist, report: dict[str, Any]) -> str:
    listed = await world["analyst"].get(
        "/api/v1/publications", params={"state": world.state.code, "limit": 200}
    )
    assert listed.status_code == 200, listed.text
    (publication_id,) = [p["id"] for p in listed.json()["items"] if p["report_id"] == report["id"]]
    return str(publication_id)


def _sections(report: dict[str, Any]) -> dict[str, str]:
    return {section["area"]: section["id"] for section in report["sections"]}


async def _contact(world: Assist, audience: str, state: Any = None) -> dict[str, Any]:
    created = await world["analyst"].post(
        "/api/v1/contact-points",
        json={
            "state": (state or world.state).code,
            "kind": "asset_freeze",
            "authority": "Asset Freezing Unit",
            "email": "freeze@gov.example.org",
            "languages": ["en"],
            "audience": audience,
        },
    )
    assert created.status_code == 201, created.text
    contact: dict[str, Any] = created.json()
    return contact


async def _activity(world: Assist, state: Any, lead: Any, **extra: Any) -> dict[str, Any]:
    created = await world["analyst"].post(
        "/api/v1/activities",
        json={
            "state": state.code,
            "area": "border_management",
            "title": "Border management training",
            "description": "Training of border guards.",
            "starts_on": "2027-01-01",
            "ends_on": "2027-06-30",
            "lead": lead.code,
        }
        | extra,
    )
    assert created.status_code == 201, created.text
    activity: dict[str, Any] = created.json()
    return activity


async def _stop_sharing(world: Assist, state: Any = None) -> None:
    withdrawn = await world["officer"].post(
        f"/api/v1/states/{(state or world.state).code}/needs-consent/withdraw",
        json={"reason": "Consultations paused."},
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text


def _cursor_of(raw: str) -> str:
    return "c1." + base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


# --- publications ---------------------------------------------------------------------


async def test_publication_upserted_with_consented_sections_then_revoked_on_narrowing_and_withdrawal(  # noqa: E501
    assist: Assist,
) -> None:
    machine = await system(assist, "publications:read")
    needs_only = await system(assist, "needs:read")
    cursors = {who: await head_cursor(assist) for who in ("entity", "machine", "needs_only")}
    readers = {"entity": assist["entity"], "machine": machine, "needs_only": needs_only}
    report = await assist.adopted_report()
    sections = _sections(report)

    await _consent(assist, report, scope="full", audience="compact")
    first = await _live_publication(assist, report)
    for who in ("entity", "machine"):
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, first) == ["upsert"], items
        (upsert,) = [i for i in items if i["id"] == first]
        assert upsert["type"] == "publication"
        assert {s["area"] for s in upsert["object"]["sections"]} == set(sections)
        assert upsert["object"]["id"] == first

    # The State narrows to one section: the old publication goes, a new one comes.
    await _consent(
        assist,
        report,
        who="state",
        scope="partial",
        sections=[sections["border_management"]],
        audience="compact",
    )
    second = await _live_publication(assist, report)
    assert second != first
    for who in ("entity", "machine"):
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, first) == ["revoke"], items
        assert ops(items, second) == ["upsert"], items
        (revoke,) = [i for i in items if i["id"] == first]
        assert "object" not in revoke
        (upsert,) = [i for i in items if i["id"] == second]
        assert [s["area"] for s in upsert["object"]["sections"]] == ["border_management"]
        assert "Findings on counter_financing." not in str(items)

    withdrawn = await assist["state"].post(
        f"/api/v1/reports/{report['id']}/consent/withdraw", json={"reason": "Cabinet decision."}
    )
    assert withdrawn.status_code == 201, withdrawn.text
    for who in ("entity", "machine"):
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, second) == ["revoke"], items
        assert ops(items, first) == [], items

    # A client without publications:read never hears of any of it.
    items, _ = await follow(needs_only, cursors["needs_only"])
    assert [i for i in items if i["type"] == "publication"] == []
    assert ops(items, first) == ops(items, second) == []


async def test_expired_publication_is_revoked_without_any_other_write(assist: Assist) -> None:
    machine = await system(assist, "publications:read")
    cursor = machine_cursor = await head_cursor(assist)
    report = await assist.adopted_report()
    expiry = clock.now() + timedelta(seconds=1.5)
    expires = expiry.isoformat()
    await _consent(assist, report, scope="full", audience="compact", expires_at=expires)
    publication = await _live_publication(assist, report)
    items, cursor = await follow(assist["entity"], cursor)
    assert ops(items, publication) == ["upsert"]

    # The expiry comes in real time: an API client's requests at a clock moved on would
    # move the shared rate-limit window for the tests that follow.
    await asyncio.sleep(max(0.0, (expiry - clock.now()).total_seconds()) + 0.1)
    # Nothing is written: the read itself serves the expiry's revoke.
    items, cursor = await follow(assist["entity"], cursor)
    assert ops(items, publication) == ["revoke"], items
    # A reader that comes only now is never served the expired content: each entry of
    # the publication is decided as of now.
    items, machine_cursor = await follow(machine, machine_cursor)
    assert ops(items, publication) == ["revoke", "revoke"], items
    assert all("object" not in i for i in items if i["id"] == publication)
    # Told once: reading again serves nothing more about it.
    items, _ = await follow(assist["entity"], cursor)
    assert ops(items, publication) == []


async def test_an_expiry_behind_an_earlier_sweep_is_still_revoked(assist: Assist) -> None:
    """A unit that ran with a clock ahead of this one (another instance whose clock runs
    fast, a clock stepped back) left the sweep mark ahead: an expiry that falls before
    the mark is still recorded, or the copy downstream would keep a publication the
    State no longer allows."""
    cursor = await head_cursor(assist)
    clock.advance(timedelta(minutes=20))
    await follow(assist["entity"], cursor)  # a read sweeps: the mark moves 20 minutes on
    clock.reset()
    report = await assist.adopted_report()
    expires = (clock.now() + timedelta(minutes=10)).isoformat()
    await _consent(assist, report, scope="full", audience="compact", expires_at=expires)
    publication = await _live_publication(assist, report)
    items, cursor = await follow(assist["entity"], cursor)
    assert ops(items, publication) == ["upsert"], items
    clock.advance(timedelta(minutes=11))
    assert (await assist["entity"].get(f"/api/v1/publications/{publication}")).status_code == 404
    items, _ = await follow(assist["entity"], cursor)
    assert ops(items, publication) == ["revoke"], items


# --- shared needs ---------------------------------------------------------------------


async def test_shared_need_upserted_then_revoked_when_sharing_stops(assist: Assist) -> None:
    machine = await system(assist, "needs:read")
    publications_only = await system(assist, "publications:read")
    start = await head_cursor(assist)
    need = await assist.need()
    await assist.share_needs()
    items, cursor = await follow(machine, start)
    # Its creation and the sharing decision: each entry is decided as of now.
    assert ops(items, need["id"]) == ["upsert", "upsert"], items
    upsert = [i for i in items if i["id"] == need["id"]][-1]
    assert upsert["type"] == "need" and upsert["object"]["id"] == need["id"]
    await _stop_sharing(assist)
    items, _ = await follow(machine, cursor)
    assert ops(items, need["id"]) == ["revoke"], items
    items, _ = await follow(publications_only, start)
    assert [i for i in items if i["type"] == "need"] == []


# --- requests -------------------------------------------------------------------------


async def test_request_stays_with_its_offerer_and_is_revoked_for_others(assist: Assist) -> None:
    machine = await system(assist, "requests:read")
    cursors = {who: await head_cursor(assist) for who in ("entity", "other_entity", "machine")}
    readers = {"entity": assist["entity"], "other_entity": assist["other_entity"]}
    readers["machine"] = machine
    await assist.share_needs()
    request = await assist.circulated()
    for who in readers:
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, request["id"])[-1:] == ["upsert"], (who, items)
        assert [i["type"] for i in items if i["id"] == request["id"]][-1] == "request"

    offered = await assist.offer(request["id"])
    assert offered.status_code == 201, offered.text
    accepted = await assist["state"].post(f"/api/v1/offers/{offered.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    for who in ("entity", "machine"):  # the offerer, and its system
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, request["id"])[-1:] == ["upsert"], (who, items)
        assert "revoke" not in ops(items, request["id"])
        (last,) = [i for i in items if i["id"] == request["id"]][-1:]
        assert last["object"]["status"] == "matched"
    items, cursors["other_entity"] = await follow(assist["other_entity"], cursors["other_entity"])
    assert ops(items, request["id"])[-1:] == ["revoke"], items
    assert "matched" not in str([i for i in items if i["id"] == request["id"]])
    assert (
        await assist["other_entity"].get(f"/api/v1/assistance-requests/{request['id']}")
    ).status_code == 404


# --- contact points -------------------------------------------------------------------


async def test_contact_point_upserted_then_revoked_when_narrowed_or_retired(
    assist: Assist,
) -> None:
    machine = await system(assist, "contacts:read")
    cursors = {"entity": await head_cursor(assist), "machine": await head_cursor(assist)}
    readers = {"entity": assist["entity"], "machine": machine}
    narrowed = await _contact(assist, "compact")
    retired = await _contact(assist, "member_states")
    for who in readers:
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, narrowed["id"]) == ["upsert"], items
        assert ops(items, retired["id"]) == ["upsert"], items
        (upsert,) = [i for i in items if i["id"] == narrowed["id"]]
        assert upsert["type"] == "contact_point"
        assert upsert["object"]["authority"] == "Asset Freezing Unit"

    patched = await assist["analyst"].patch(
        f"/api/v1/contact-points/{narrowed['id']}", json={"audience": "secretariat"}
    )
    assert patched.status_code == 200, patched.text
    gone = await assist["analyst"].delete(f"/api/v1/contact-points/{retired['id']}")
    assert gone.status_code == 204, gone.text
    for who in readers:
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, narrowed["id"]) == ["revoke"], items
        assert ops(items, retired["id"]) == ["revoke"], items
        assert "object" not in str([i for i in items if i["op"] == "revoke"])


# --- activities -----------------------------------------------------------------------


async def test_activity_reaches_lead_and_partners_always_others_only_while_shared(
    assist: Assist,
) -> None:
    partner, partner_org = await further_entity(assist, "partner")
    machine = await system(assist, "activities:read")
    readers = {
        "lead": assist["entity"],
        "machine": machine,
        "partner": partner,
        "other": assist["other_entity"],
    }
    cursors = {who: await head_cursor(assist) for who in readers}
    # The State does not share its needs yet.
    activity = await _activity(assist, assist.state, assist.entity, partners=[partner_org.code])
    for who in ("lead", "machine", "partner"):
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert ops(items, activity["id"]) == ["upsert"], (who, items)
        (upsert,) = [i for i in items if i["id"] == activity["id"]]
        assert upsert["type"] == "activity" and upsert["object"]["id"] == activity["id"]
    items, cursors["other"] = await follow(readers["other"], cursors["other"])
    assert ops(items, activity["id"]) == []

    await assist.share_needs()
    items, cursors["other"] = await follow(readers["other"], cursors["other"])
    assert ops(items, activity["id"]) == ["upsert"], items

    await _stop_sharing(assist)
    items, cursors["other"] = await follow(readers["other"], cursors["other"])
    assert ops(items, activity["id"]) == ["revoke"], items
    for who in ("lead", "machine", "partner"):
        items, cursors[who] = await follow(readers[who], cursors[who])
        assert "revoke" not in ops(items, activity["id"]), (who, items)
        assert ops(items, activity["id"]).count("upsert") >= 1, (who, items)

    # Edited while not shared: the lead hears of it, the other entity of nothing.
    edited = await assist["entity"].patch(
        f"/api/v1/activities/{activity['id']}", json={"description": "Second phase."}
    )
    assert edited.status_code == 200, edited.text
    items, cursors["lead"] = await follow(readers["lead"], cursors["lead"])
    assert ops(items, activity["id"]) == ["upsert"]
    items, cursors["other"] = await follow(readers["other"], cursors["other"])
    assert ops(items, activity["id"]) == []

    items, cursors["partner"] = await follow(readers["partner"], cursors["partner"])
    assert ops(items, activity["id"]) == ["upsert"], items
    # A partner taken off the activity is told to drop it.
    dropped = await assist["entity"].patch(
        f"/api/v1/activities/{activity['id']}", json={"partners": []}
    )
    assert dropped.status_code == 200, dropped.text
    items, cursors["partner"] = await follow(readers["partner"], cursors["partner"])
    assert ops(items, activity["id"]) == ["revoke"], items
    items, cursors["lead"] = await follow(readers["lead"], cursors["lead"])
    assert ops(items, activity["id"]) == ["upsert"], items


# --- never learning what one could not see ---------------------------------------------


async def test_nothing_is_served_about_what_the_caller_could_never_read(assist: Assist) -> None:
    machine = await system(assist)
    readers = {"entity": assist["entity"], "machine": machine}
    cursors = {who: await head_cursor(assist) for who in readers}
    lead, lead_org = await further_entity(assist, "lead")
    # Another entity's activity in a State that does not share; a need never shared; a
    # contact point for the Secretariat only.
    activity = await _activity(assist, assist.other_state, lead_org)
    need = await assist.need(state=assist.other_state)
    contact = await _contact(assist, "secretariat", state=assist.other_state)
    # ... then edited, cancelled, withdrawn, retired.
    cancelled = await lead.patch(
        f"/api/v1/activities/{activity['id']}", json={"status": "cancelled"}
    )
    assert cancelled.status_code == 200, cancelled.text
    edited = await assist["analyst"].patch(f"/api/v1/needs/{need['id']}", json={"priority": "low"})
    assert edited.status_code == 200, edited.text
    not_shared = await decide(
        assist["officer"],
        f"/api/v1/states/{assist.other_state.code}/needs-consent",
        {"share_needs": False, "reference": "NV/2026/22"},
    )
    assert not_shared.status_code == 201, not_shared.text
    retired = await assist["analyst"].delete(f"/api/v1/contact-points/{contact['id']}")
    assert retired.status_code == 204, retired.text
    # The lead itself hears of its activity at each change: the entries exist.
    items, _ = await follow(lead, cursors["entity"])
    assert set(ops(items, activity["id"])) == {"upsert"}, items
    assert len(ops(items, activity["id"])) >= 2, items
    for who, reader in readers.items():
        items, _ = await follow(reader, cursors[who])
        for hidden in (activity["id"], need["id"], contact["id"]):
            assert ops(items, hidden) == [], (who, hidden, items)


async def test_an_entity_that_joins_later_hears_nothing_of_what_went_before(
    assist: Assist,
) -> None:
    cursor = await head_cursor(assist)
    contact = await _contact(assist, "compact")
    assert (
        await assist["analyst"].delete(f"/api/v1/contact-points/{contact['id']}")
    ).status_code == 204
    newcomer, _ = await further_entity(assist, "newcomer")
    items, _ = await follow(newcomer, cursor)
    assert ops(items, contact["id"]) == [], items
    items, _ = await follow(assist["entity"], cursor)
    assert ops(items, contact["id"]) == ["revoke", "revoke"], items


# --- the cursor -----------------------------------------------------------------------


async def test_next_cursor_is_always_there_and_resumes_after_what_was_served(
    assist: Assist,
) -> None:
    cursor = await head_cursor(assist)
    empty = await assist["entity"].get("/api/v1/changes", params={"cursor": cursor})
    assert empty.status_code == 200, empty.text
    assert empty.json()["items"] == [] and empty.json()["has_more"] is False
    # The same position (the cursor also names the kinds it was served).
    assert decode_cursor(empty.json()["next_cursor"]) == decode_cursor(cursor)
    await assist.share_needs()
    first = await assist.need()
    items, cursor = await follow(assist["entity"], cursor)
    assert ops(items, first["id"]) == ["upsert"]
    second = await assist.need()
    items, cursor = await follow(assist["entity"], cursor)
    assert ops(items, second["id"]) == ["upsert"] and ops(items, first["id"]) == []
    again = await assist["entity"].get("/api/v1/changes", params={"cursor": cursor})
    assert again.json()["items"] == [] and again.json()["next_cursor"] == cursor


async def test_types_narrow_the_feed_and_unknown_types_are_refused(assist: Assist) -> None:
    cursor = await head_cursor(assist)
    await assist.share_needs()
    need = await assist.need()
    contact = await _contact(assist, "compact")
    needs, _ = await follow(assist["entity"], cursor, types="need")
    assert ops(needs, need["id"]) == ["upsert"] and ops(needs, contact["id"]) == []
    assert {i["type"] for i in needs} == {"need"}
    both, _ = await follow(assist["entity"], cursor, types="need, contact_point")
    assert ops(both, need["id"]) == ["upsert"] and ops(both, contact["id"]) == ["upsert"]
    # A cursor read for some types passed the others unread: it resumes those types (or
    # fewer), never more.
    _, need_cursor = await follow(assist["entity"], cursor, types="need")
    resumed = await assist["entity"].get(
        "/api/v1/changes", params={"cursor": need_cursor, "types": "need"}
    )
    assert resumed.status_code == 200, resumed.text
    for wider in ({}, {"types": "need,contact_point"}):
        widened = await assist["entity"].get(
            "/api/v1/changes", params={"cursor": need_cursor} | wider
        )
        assert widened.status_code == 422, (wider, widened.text)
        assert widened.json()["errors"][0]["loc"] == ["query", "cursor"]
    refused = await assist["entity"].get("/api/v1/changes", params={"types": "need,report"})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 422 and "report" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["query", "types"]


async def test_malformed_and_foreign_cursors_are_422(assist: Assist) -> None:
    async with assist.database.sessionmaker() as session:
        head = (await session.exec(select(FeedHead).where(col(FeedHead.id) == 1))).one()
    for cursor in (
        "nonsense",
        "c1.",
        "c1.!!!",
        "c2." + _cursor_of("5")[3:],
        _cursor_of("-3"),
        _cursor_of("twelve"),
        _cursor_of(str(head.last_seq + 1_000_000)),  # beyond the feed's head
    ):
        response = await assist["entity"].get("/api/v1/changes", params={"cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"], cursor


async def test_a_purged_cursor_is_gone_and_a_fresh_read_rebuilds_the_copy(
    assist: Assist,
) -> None:
    machine = await system(assist)
    cursor = await head_cursor(assist)
    await assist.share_needs()
    kept = await assist.need()
    edited = await assist["analyst"].patch(f"/api/v1/needs/{kept['id']}", json={"priority": "low"})
    assert edited.status_code == 200, edited.text  # supersedes the need's first entry
    dropped = await assist.need()
    contact = await _contact(assist, "compact")
    retired = await _contact(assist, "compact")
    assert (
        await assist["analyst"].delete(f"/api/v1/contact-points/{retired['id']}")
    ).status_code == 204
    async with assist.database.transaction() as session:
        removed = await feed_service.purge(session, clock.now() + timedelta(days=1))
    assert removed > 0

    gone = await machine.get("/api/v1/changes", params={"cursor": cursor})
    assert gone.status_code == 410, gone.text
    assert gone.headers["content-type"].startswith("application/problem+json")
    problem = gone.json()
    assert problem["status"] == 410 and problem["title"] == "Gone"
    assert "without a cursor" in problem["detail"]
    (denial,) = await audit_events(assist.database, request_id=gone.headers["X-Request-ID"])
    assert (denial.action, denial.outcome) == ("change.list", "denied")
    assert details(denial)["reason"] == "cursor past retention"

    # Without a cursor, the feed still holds each object's latest entry.
    items, _ = await follow(machine, None, limit="200")
    copy = mirror(items)
    for object_id in (kept["id"], dropped["id"], contact["id"]):
        assert object_id in copy, object_id
    assert copy[kept["id"]]["priority"] == "low"
    assert retired["id"] not in copy
    # ... and matches what the lists give the same client, object by object.
    for object_id, obj in copy.items():
        if object_id in (kept["id"], dropped["id"]):
            listed = await machine.get(f"/api/v1/needs/{object_id}")
            assert listed.status_code == 200 and listed.json() == obj


# --- who may read the feed, and the audit trail ----------------------------------------


async def test_each_page_is_one_audited_read_naming_what_it_served(assist: Assist) -> None:
    cursor = await head_cursor(assist)
    await assist.share_needs()
    need = await assist.need()
    contact = await _contact(assist, "compact")
    assert (
        await assist["analyst"].delete(f"/api/v1/contact-points/{contact['id']}")
    ).status_code == 204
    response = await assist["entity"].get(
        "/api/v1/changes", params={"cursor": cursor, "limit": 200}
    )
    assert response.status_code == 200, response.text
    page = response.json()
    (event,) = await audit_events(assist.database, request_id=response.headers["X-Request-ID"])
    assert (event.action, event.outcome, event.object_type) == ("change.list", "allowed", "change")
    recorded = details(event)
    assert recorded["upserts"] == [
        f"{i['type']}:{i['id']}" for i in page["items"] if i["op"] == "upsert"
    ]
    assert recorded["revokes"] == [
        f"{i['type']}:{i['id']}" for i in page["items"] if i["op"] == "revoke"
    ]
    assert f"need:{need['id']}" in recorded["upserts"]
    assert f"contact_point:{contact['id']}" in recorded["revokes"]


async def test_only_entities_and_their_read_scoped_systems_may_read_the_feed(
    assist: Assist,
) -> None:
    anonymous = await assist["anonymous"].get("/api/v1/changes")
    assert anonymous.status_code == 401
    for who in ("state", "analyst", "auditor"):
        me = (await assist[who].get("/api/v1/me")).json()
        refused = await assist[who].get("/api/v1/changes")
        assert refused.status_code == 403, (who, refused.text)
        denials = await audit_events(
            assist.database, request_id=refused.headers["X-Request-ID"], outcome="denied"
        )
        assert [(d.action, str(d.actor_user_id)) for d in denials] == [("change.read", me["id"])]
    writer = await make_api_client(assist.database, org=assist.entity, scopes=("offers:write",))
    async with await bearer_http(assist.app, writer) as http:
        refused = await http.get("/api/v1/changes")
        assert refused.status_code == 403, refused.text
        assert "insufficient_scope" in refused.headers["www-authenticate"]
        (denial,) = await audit_events(assist.database, request_id=refused.headers["X-Request-ID"])
        assert (denial.action, denial.outcome) == ("change.read", "denied")


# --- order ----------------------------------------------------------------------------


async def test_entries_come_in_the_order_of_the_writes_one_page_after_another(
    assist: Assist,
) -> None:
    cursor = await head_cursor(assist)
    await assist.share_needs()
    written = [await assist.need(), await _contact(assist, "compact"), await assist.need()]
    seen: list[dict[str, Any]] = []
    while True:  # one entry a page
        response = await assist["entity"].get(
            "/api/v1/changes", params={"cursor": cursor, "limit": 1}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    numbers = [item["seq"] for item in seen]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    positions = [next(i for i, item in enumerate(seen) if item["id"] == w["id"]) for w in written]
    assert positions == sorted(positions), seen
    assert all(isinstance(item["at"], str) and uuid.UUID(item["id"]) for item in seen)


async def test_a_secretariat_entity_focal_point_is_told_when_its_contact_is_retired(
    assist: Assist,
) -> None:
    """`entity_focal_point` is also a Secretariat role (CTED, UNOCT), and the Secretariat
    reads contact points of audience `secretariat`, which no Compact entity does: the
    feed serves it their upserts (its real scope), so it must serve their revokes too."""
    secretariat = await make_org(assist.database, kind="secretariat")
    user = await make_user(assist.database, org=secretariat, roles=("entity_focal_point",))
    reader = new_client(assist.app)
    assist.clients["secretariat_entity"] = reader
    await sign_in(reader, user.email)
    cursor = await head_cursor(assist)
    contact = await _contact(assist, "secretariat")
    items, cursor = await follow(reader, cursor)
    served = ops(items, contact["id"])
    retired = await assist["analyst"].delete(f"/api/v1/contact-points/{contact['id']}")
    assert retired.status_code == 204, retired.text
    items, _ = await follow(reader, cursor)
    assert served + ops(items, contact["id"]) in ([], ["upsert", "revoke"]), (served, items)
