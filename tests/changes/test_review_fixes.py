"""What an independent review of the feed found, held: an organization created after a
withdrawal learns nothing of it; a cursor read for some types may not resume a read of
more; an expiry is recorded by the background sweep, with nobody writing or reading."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from ctcp.changes import recorder, service
from ctcp.changes.models import ChangeEntry
from ctcp.core.clock import clock
from ctcp.oauth.models import ApiClient
from tests.changes.conftest import Assist, follow, further_entity, head_cursor, ops
from tests.factories import bearer_http, decide, make_api_client


async def _withdraw_needs_sharing(world: Assist) -> None:
    withdrawn = await world["officer"].post(
        f"/api/v1/states/{world.state.code}/needs-consent/withdraw",
        json={"reason": "Consultations paused."},
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text


async def test_an_entity_created_after_a_withdrawal_is_not_told_of_it(assist: Assist) -> None:
    need = await assist.need()
    await assist.share_needs()
    # The entity of the world could read the need, and is told of its withdrawal.
    start = await head_cursor(assist)
    await _withdraw_needs_sharing(assist)
    items, _ = await follow(assist["entity"], start)
    assert ops(items, need["id"]) == ["revoke"], items
    # One created afterwards, reading the whole feed, never hears of the need at all.
    newcomer, _ = await further_entity(assist, "newcomer")
    items, _ = await follow(newcomer, None)
    assert ops(items, need["id"]) == [], [i for i in items if i["id"] == need["id"]]


async def test_a_cursor_read_for_some_types_resumes_those_or_fewer_only(assist: Assist) -> None:
    _, needs_only = await follow(assist["entity"], None, types="need")
    _, both = await follow(assist["entity"], None, types="need,activity")
    for cursor, types in ((needs_only, None), (needs_only, "need,activity")):
        params = {"cursor": cursor} | ({"types": types} if types else {})
        refused = await assist["entity"].get("/api/v1/changes", params=params)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["query", "cursor"]
    for cursor, types in ((needs_only, "need"), (both, "activity"), (both, "need,activity")):
        resumed = await assist["entity"].get(
            "/api/v1/changes", params={"cursor": cursor, "types": types}
        )
        assert resumed.status_code == 200, resumed.text


async def test_the_background_sweep_records_an_expiry_with_nobody_reading(
    assist: Assist,
) -> None:
    need = await assist.need()
    recorded = await decide(
        assist["officer"],
        f"/api/v1/states/{assist.state.code}/needs-consent",
        {
            "share_needs": True,
            "reference": "NV/2026/12",
            "expires_at": (clock.now() + timedelta(minutes=5)).isoformat(),
        },
    )
    assert recorded.status_code == 201, recorded.text
    clock.advance(timedelta(minutes=6))
    try:
        # What each process's sweeper runs (CTCP_CHANGE_FEED_SWEEP_SECONDS), twice: the
        # second pass finds nothing more to record.
        for _ in range(2):
            async with assist.database.transaction() as session:
                await recorder.sweep(session)
    finally:
        clock.reset()
    async with assist.database.transaction() as session:
        statement = (
            select(ChangeEntry)
            .where(col(ChangeEntry.object_id) == uuid.UUID(need["id"]))
            .order_by(col(ChangeEntry.seq))
        )
        entries = (await session.exec(statement)).all()
    last = entries[-1]
    assert (last.generic_before, last.generic_after) == (True, False)
    assert [(e.generic_before, e.generic_after) for e in entries].count((True, False)) == 1


async def test_a_client_whose_scopes_change_under_its_cursor_must_start_again(
    assist: Assist,
) -> None:
    """A copy holding a kind the client may no longer read would never see its revokes;
    a kind newly opened was passed over: either way the cursor is gone (410, audited)."""
    credentials = await make_api_client(
        assist.database, org=assist.entity, scopes=("needs:read", "contacts:read")
    )
    machine = await bearer_http(assist.app, credentials)
    assist.clients["machine"] = machine
    _, cursor = await follow(machine, None)
    async with assist.database.transaction() as session:
        client = await session.get(ApiClient, credentials.id)
        assert client is not None
        client.scopes = "needs:read"
        session.add(client)
    narrowed = await bearer_http(assist.app, credentials)
    assist.clients["narrowed"] = narrowed
    gone = await narrowed.get("/api/v1/changes", params={"cursor": cursor})
    assert gone.status_code == 410, gone.text
    assert gone.headers["content-type"].startswith("application/problem+json")
    # Starting again is the way on; its cursor holds the kinds read now.
    _, fresh = await follow(narrowed, None)
    assert (await narrowed.get("/api/v1/changes", params={"cursor": fresh})).status_code == 200


async def test_a_read_begun_without_a_cursor_after_retention_runs_page_after_page(
    assist: Assist,
) -> None:
    """Retention leaves numbers behind it; a reader starting afresh afterwards walks past
    them page by page — its cursors are not taken for old ones (they name the pass)."""
    old = await head_cursor(assist)
    need = await assist.need()
    await assist.share_needs()  # the need's first entry is superseded
    async with assist.database.transaction() as session:
        await service.purge(session, clock.now() + timedelta(days=1))
    gone = await assist["entity"].get("/api/v1/changes", params={"cursor": old})
    assert gone.status_code == 410, gone.text
    items, _ = await follow(assist["entity"], None, limit=1)
    assert ops(items, need["id"])[-1:] == ["upsert"]


@pytest.mark.postgresql_only
async def test_an_entry_committed_while_a_page_is_read_is_served_by_the_next_page(
    assist: Assist, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that reached the end of what was committed when it began resumes from
    there, not from the head as it stands when the page ends: a write committed in
    between (another worker's withdrawal) is served next, not passed over. (PostgreSQL
    reads each statement afresh; SQLite's one writer waits for the reading page.)"""
    await assist.share_needs()
    start = await head_cursor(assist)
    first = await assist.need()
    decide_page = service._decide
    written: list[dict[str, Any]] = []

    async def decide_while_another_worker_writes(*args: Any, **kwargs: Any) -> Any:
        if not written:
            written.append(await assist.need())  # committed by its own session
        return await decide_page(*args, **kwargs)

    monkeypatch.setattr(service, "_decide", decide_while_another_worker_writes)
    page = await assist["entity"].get("/api/v1/changes", params={"cursor": start, "types": "need"})
    monkeypatch.undo()
    assert page.status_code == 200, page.text
    assert ops(page.json()["items"], first["id"]) == ["upsert"]
    (second,) = written
    items, _ = await follow(assist["entity"], page.json()["next_cursor"], types="need")
    assert ops(items, second["id"]) == ["upsert"], items
