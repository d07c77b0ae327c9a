"""Assistance requests: filing, the workflow table, and who sees them as needs are shared."""

from typing import Any

import pytest

from ctcp.assistance.models import RequestStatus
from ctcp.assistance.requests import BY_ACCEPTING_AN_OFFER, TRANSITIONS
from tests.assistance.conftest import Assist
from tests.factories import audit_events, bearer_http, decide, make_api_client

# Callers that hold a workflow grant, and those that never move a request.
MOVERS = ("state", "analyst")
NON_MOVERS = ("entity", "officer", "admin", "auditor")
ROLE_OF = {"state": "state_focal_point", "analyst": "cted_analyst"}
# How to bring a fresh request into each status.
PATHS: dict[RequestStatus, list[tuple[str, str]]] = {
    RequestStatus.SUBMITTED: [],
    RequestStatus.UNDER_REVIEW: [("under_review", "analyst")],
    RequestStatus.CIRCULATED: [("under_review", "analyst"), ("circulated", "analyst")],
    RequestStatus.MATCHED: [("under_review", "analyst"), ("circulated", "analyst"), ("*", "")],
    RequestStatus.IN_PROGRESS: [
        ("under_review", "analyst"),
        ("circulated", "analyst"),
        ("*", ""),
        ("in_progress", "analyst"),
    ],
    RequestStatus.COMPLETED: [
        ("under_review", "analyst"),
        ("circulated", "analyst"),
        ("*", ""),
        ("in_progress", "analyst"),
        ("completed", "analyst"),
    ],
    RequestStatus.DECLINED: [("declined", "analyst")],
    RequestStatus.WITHDRAWN: [("withdrawn", "state")],
}


async def _request_in(assist: Assist, status: RequestStatus) -> dict[str, Any]:
    await assist.share_needs()
    request = await assist.file(await assist.need())
    for to, who in PATHS[status]:
        if to == "*":  # matched: an entity offers, the State accepts
            offer = await assist.offer(request["id"])
            assert offer.status_code == 201, offer.text
            accepted = await assist["state"].post(f"/api/v1/offers/{offer.json()['id']}/accept")
            assert accepted.status_code == 200, accepted.text
        else:
            await assist.move(request["id"], to, who, reason="Recorded reason.")
    current = await assist["analyst"].get(f"/api/v1/assistance-requests/{request['id']}")
    assert current.json()["status"] == status.value
    return request


def expected(who: str, step: tuple[RequestStatus, RequestStatus]) -> int:
    """The workflow table read as HTTP: 403 for roles without the move, 409 for illegal moves."""
    if who in NON_MOVERS:
        return 403
    if who == "other_state":
        return 404
    if step not in TRANSITIONS or step == BY_ACCEPTING_AN_OFFER:
        return 409
    return 200 if ROLE_OF[who] in TRANSITIONS[step] else 403


@pytest.mark.parametrize(
    "step", sorted(TRANSITIONS), ids=lambda step: f"{step[0].value}->{step[1].value}"
)
async def test_each_listed_transition_only_for_the_roles_that_own_it(
    assist: Assist, step: tuple[RequestStatus, RequestStatus]
) -> None:
    request = await _request_in(assist, step[0])
    path = f"/api/v1/assistance-requests/{request['id']}/transition"
    body = {"to": step[1].value, "reason": "Because."}
    # Refused callers first (nothing changes), then the owner, if any, moves it.
    callers = sorted(
        (*NON_MOVERS, "other_state", *MOVERS), key=lambda who: expected(who, step) == 200
    )
    for who in callers:
        response = await assist[who].post(path, json=body)
        assert response.status_code == expected(who, step), (who, response.text)
        if response.status_code == 200:
            assert response.json()["status"] == step[1].value
            assert response.json()["history"][-1]["to_status"] == step[1].value
            break
    anonymous = await assist["anonymous"].post(path, json=body)
    assert anonymous.status_code == 401
    client = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("requests:read",)),
    )
    async with client:
        assert (await client.post(path, json=body)).status_code == 403


@pytest.mark.parametrize("start", list(RequestStatus), ids=lambda s: s.value)
async def test_every_move_not_in_the_table_is_a_conflict(
    assist: Assist, start: RequestStatus
) -> None:
    request = await _request_in(assist, start)
    path = f"/api/v1/assistance-requests/{request['id']}/transition"
    for to in RequestStatus:
        step = (start, to)
        if step in TRANSITIONS and step != BY_ACCEPTING_AN_OFFER:
            continue
        for who in MOVERS:
            response = await assist[who].post(path, json={"to": to.value, "reason": "R."})
            assert response.status_code == 409, (who, step, response.text)
    after = await assist["analyst"].get(f"/api/v1/assistance-requests/{request['id']}")
    assert after.json()["status"] == start.value


async def test_exits_need_a_reason_and_close_pending_offers(assist: Assist) -> None:
    request = await _request_in(assist, RequestStatus.CIRCULATED)
    offer = await assist.offer(request["id"])
    path = f"/api/v1/assistance-requests/{request['id']}/transition"
    assert (await assist["analyst"].post(path, json={"to": "declined"})).status_code == 422
    declined = await assist["analyst"].post(
        path, json={"to": "declined", "reason": "Out of scope."}
    )
    assert declined.status_code == 200
    assert declined.json()["history"][-1]["reason"] == "Out of scope."
    closed = await assist["entity"].get(f"/api/v1/offers/{offer.json()['id']}")
    assert closed.json()["status"] == "closed"
    closing = await audit_events(assist.database, action="offer.close", object_id=request["id"])
    assert len(closing) == 1 and offer.json()["id"] in closing[0].details
    moves = await audit_events(
        assist.database, action="request.transition", object_id=request["id"]
    )
    assert [m.details.count('"to": "declined"') for m in moves][-1] == 1


async def test_filing_rules(assist: Assist) -> None:
    own, closed = await assist.need(), await assist.need()
    await assist["analyst"].patch(f"/api/v1/needs/{closed['id']}", json={"status": "closed"})
    other = await assist.need(state=assist.other_state)
    body = {"title": "T", "description": "D", "need_ids": [own["id"]]}
    filed = await assist["state"].post("/api/v1/assistance-requests", json=body)
    assert filed.status_code == 201, filed.text
    assert (
        filed.json()["status"] == "submitted" and filed.json()["state"]["code"] == assist.state.code
    )
    assert [n["id"] for n in filed.json()["needs"]] == [own["id"]]
    for need_ids in ([other["id"]], [closed["id"]], [own["id"], other["id"]], []):
        refused = await assist["state"].post(
            "/api/v1/assistance-requests", json=body | {"need_ids": need_ids}
        )
        assert refused.status_code == 422, (need_ids, refused.text)
    for_other = await assist["state"].post(
        "/api/v1/assistance-requests", json=body | {"state": assist.other_state.code}
    )
    assert for_other.status_code == 403
    # An analyst files on a State's behalf, and must name it.
    assert (
        await assist["analyst"].post("/api/v1/assistance-requests", json=body)
    ).status_code == 422
    on_behalf = await assist.file(own, who="analyst")
    assert on_behalf["state"]["code"] == assist.state.code
    for who in ("entity", "officer", "admin", "auditor"):
        assert (await assist[who].post("/api/v1/assistance-requests", json=body)).status_code == 403
    created = await audit_events(
        assist.database, action="request.create", object_id=filed.json()["id"]
    )
    assert len(created) == 1


async def _sees(assist: Assist, who: str, request_id: str) -> bool:
    detail = await assist[who].get(f"/api/v1/assistance-requests/{request_id}")
    assert detail.status_code in (200, 404), detail.text
    listed = await assist[who].get("/api/v1/assistance-requests", params={"limit": 200})
    in_list = request_id in {r["id"] for r in listed.json()["items"]}
    assert in_list == (detail.status_code == 200), (who, detail.status_code)
    return in_list


async def test_compact_sees_circulated_requests_only_while_needs_are_shared(assist: Assist) -> None:
    need = await assist.need()
    request = await assist.file(need)
    for who in ("state", "analyst"):
        assert await _sees(assist, who, request["id"])
    assert not await _sees(assist, "other_state", request["id"])
    await assist.move(request["id"], "under_review")
    await assist.move(request["id"], "circulated")
    assert not await _sees(assist, "entity", request["id"]), "needs not shared yet"
    await assist.share_needs()
    assert await _sees(assist, "entity", request["id"])
    withdraw = f"/api/v1/states/{assist.state.code}/needs-consent/withdraw"
    assert (await assist["state"].post(withdraw, json={"reason": "x"})).status_code == 201
    assert not await _sees(assist, "entity", request["id"])
    assert (await assist.offer(request["id"])).status_code == 404


async def test_one_unshared_need_hides_the_whole_request(assist: Assist) -> None:
    await assist.share_needs()
    report = await assist.adopted_report()
    recommendation = report["sections"][0]["recommendations"][0]["id"]
    from_report = await assist["analyst"].post(
        "/api/v1/needs",
        json={
            "state": assist.state.code,
            "description": "D.",
            "priority": "high",
            "source": "recommendation",
            "recommendation_id": recommendation,
        },
    )
    request = await assist.circulated(await assist.need(), from_report.json())
    assert not await _sees(assist, "entity", request["id"])
    consent = await decide(
        assist["officer"],
        f"/api/v1/reports/{report['id']}/consent",
        {"scope": "none", "share_needs": True, "reference": "NV/3"},
    )
    assert consent.status_code == 201
    assert not await _sees(assist, "entity", request["id"]), "no consent: no needs shared"
    path = f"/api/v1/reports/{report['id']}/consent"
    # Partial consent shares the needs of the consented sections only.
    other_section = {
        "scope": "partial",
        "sections": [report["sections"][1]["id"]],
        "share_needs": True,
        "reference": "NV/4",
    }
    assert (await decide(assist["officer"], path, other_section)).status_code == 201
    assert not await _sees(assist, "entity", request["id"]), "the need's section is unconsented"
    own_section = other_section | {"sections": [report["sections"][0]["id"]], "reference": "NV/5"}
    assert (await decide(assist["officer"], path, own_section)).status_code == 201
    assert await _sees(assist, "entity", request["id"])


async def test_after_matching_only_entities_that_offered_keep_seeing_it(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    offer = await assist.offer(request["id"])
    assert await _sees(assist, "other_entity", request["id"])
    await assist["state"].post(f"/api/v1/offers/{offer.json()['id']}/accept")
    assert await _sees(assist, "entity", request["id"])
    assert not await _sees(assist, "other_entity", request["id"])


async def test_circulation_notifies_the_compacts_focal_points_only_when_shared(
    assist: Assist,
) -> None:
    hidden = await assist.circulated()
    assert await assist.notifications(object_id=hidden["id"]) == []
    await assist.share_needs()
    shown = await assist.circulated()
    rows = await assist.notifications(object_id=shown["id"], event="request.circulated")
    recipients = {row.recipient_user_id for row in rows}
    me = {(await assist[who].get("/api/v1/me")).json()["id"] for who in ("entity", "other_entity")}
    assert me <= {str(r) for r in recipients}
    state_user = (await assist["state"].get("/api/v1/me")).json()["id"]
    assert state_user not in {str(r) for r in recipients}
    assert all(shown["title"] not in row.body for row in rows), "no content in e-mail"


async def test_requests_read_by_api_clients_need_the_requests_scope(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    reader = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("requests:read",)),
    )
    async with reader:
        seen = await reader.get(f"/api/v1/assistance-requests/{request['id']}")
        assert seen.status_code == 200 and seen.json()["needs"]


async def test_circulation_can_tell_only_the_suggested_entities(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.file(await assist.need())
    await assist.move(request["id"], "under_review")
    path = f"/api/v1/assistance-requests/{request['id']}/transition"
    for body in (
        {"to": "circulated", "notify": ["NOSUCHENTITY"]},
        {"to": "circulated", "notify": [assist.state.code]},  # a State is no entity
        {"to": "circulated", "notify": []},
        {"to": "declined", "reason": "R", "notify": [assist.entity.code]},
    ):
        refused = await assist["analyst"].post(path, json=body)
        assert refused.status_code == 422, (body, refused.text)
    moved = await assist["analyst"].post(
        path, json={"to": "circulated", "notify": [assist.entity.code]}
    )
    assert moved.status_code == 200, moved.text
    told = {
        str(row.recipient_user_id)
        for row in await assist.notifications(object_id=request["id"], event="request.circulated")
    }
    entity_user = (await assist["entity"].get("/api/v1/me")).json()["id"]
    other_user = (await assist["other_entity"].get("/api/v1/me")).json()["id"]
    assert told == {entity_user}
    assert other_user not in told
    assert await _sees(assist, "other_entity", request["id"]), "still visible to every entity"
