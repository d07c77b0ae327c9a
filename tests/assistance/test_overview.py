"""The overview counts only what the caller may see: no counts about unsharing States."""

from typing import Any

from tests.assistance.conftest import Assist
from tests.factories import bearer_http, make_api_client


def _row(overview: dict[str, Any], dimension: str, key: str) -> dict[str, Any] | None:
    return next((r for r in overview[dimension] if r["key"] == key), None)


async def _overview(assist: Assist, who: str) -> dict[str, Any]:
    response = await assist[who].get("/api/v1/assistance/overview")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_counts_per_state_and_area_within_each_callers_scope(assist: Assist) -> None:
    await assist.share_needs()  # the State shares; the other State does not
    borders = [await assist.need(area="border_management") for _ in range(3)]
    await assist.need(area="legislation")
    closed = await assist.need(area="legislation")
    await assist["analyst"].patch(f"/api/v1/needs/{closed['id']}", json={"status": "closed"})
    await assist.circulated(borders[0])
    matched = await assist.circulated(borders[1])
    offer = (await assist.offer(matched["id"])).json()
    await assist["state"].post(f"/api/v1/offers/{offer['id']}/accept")
    await assist.file(borders[2])  # submitted: not counted
    for area in ("border_management", "human_rights"):
        hidden = await assist.need(state=assist.other_state, area=area)
        filed = await assist["analyst"].post(
            "/api/v1/assistance-requests",
            json={
                "state": assist.other_state.code,
                "title": "T",
                "description": "D",
                "need_ids": [hidden["id"]],
            },
        )
        await assist.move(filed.json()["id"], "under_review")
        await assist.move(filed.json()["id"], "circulated")
    state = _row(await _overview(assist, "state"), "by_state", assist.state.code)
    assert state == {
        "key": assist.state.code,
        "open_needs": 4,
        "circulated": 1,
        "matched": 1,
        "in_progress": 0,
        "completed": 0,
    }
    state_view = await _overview(assist, "state")
    assert [r["key"] for r in state_view["by_state"]] == [assist.state.code]
    entity_view = await _overview(assist, "entity")
    assert _row(entity_view, "by_state", assist.other_state.code) is None, "never counted"
    assert _row(entity_view, "by_state", assist.state.code) == state
    analyst_view = await _overview(assist, "analyst")
    other = _row(analyst_view, "by_state", assist.other_state.code)
    assert other is not None and other["open_needs"] == 2
    border = _row(state_view, "by_area", "border_management")
    assert border is not None and (
        border["open_needs"],
        border["circulated"],
        border["matched"],
    ) == (3, 1, 1)
    # Withdrawal hides the State from the entity's counts at once.
    withdraw = f"/api/v1/states/{assist.state.code}/needs-consent/withdraw"
    assert (await assist["state"].post(withdraw, json={"reason": "x"})).status_code == 201
    assert _row(await _overview(assist, "entity"), "by_state", assist.state.code) is None


async def test_overview_for_clients_and_refused_roles(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    needs_only = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("needs:read",)),
    )
    both = await bearer_http(
        assist.app,
        await make_api_client(
            assist.database, org=assist.entity, scopes=("needs:read", "requests:read")
        ),
    )
    async with needs_only, both:
        row = _row(
            (await needs_only.get("/api/v1/assistance/overview")).json(),
            "by_state",
            assist.state.code,
        )
        assert row is not None and row["open_needs"] == 1 and row["circulated"] == 0
        row = _row(
            (await both.get("/api/v1/assistance/overview")).json(), "by_state", assist.state.code
        )
        assert row is not None and row["circulated"] == 1
    assert request["id"]
    for who in ("admin", "auditor"):
        assert (await assist[who].get("/api/v1/assistance/overview")).status_code == 403
