"""Offers: made on circulated requests; accepting one matches the request and closes the rest."""

import asyncio

from tests.assistance.conftest import Assist
from tests.factories import audit_events, bearer_http, make_api_client


async def test_an_entity_offers_on_a_circulated_shared_request(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    offer = await assist.offer(request["id"], budget="250000.00", currency="USD")
    assert offer.status_code == 201, offer.text
    body = offer.json()
    assert body["status"] == "pending" and body["organization"]["code"] == assist.entity.code
    assert body["budget"] == "250000.00" and body["currency"] == "USD"
    created = await audit_events(assist.database, action="offer.create", object_id=body["id"])
    assert len(created) == 1
    rows = await assist.notifications(object_id=body["id"], event="offer.received")
    state_user = (await assist["state"].get("/api/v1/me")).json()["id"]
    assert [str(r.recipient_user_id) for r in rows] == [state_user]


async def test_offers_are_refused_outside_circulation_sharing_or_role(assist: Assist) -> None:
    await assist.share_needs()
    submitted = await assist.file(await assist.need())
    assert (await assist.offer(submitted["id"])).status_code == 404, "not circulated: unseen"
    circulated = await assist.circulated()
    for bad in (
        {"budget": "10"},
        {"currency": "USD"},
        {"budget": "-1", "currency": "USD"},
        {"currency": "usd", "budget": "1"},
        {"programme": ""},
    ):
        response = await assist.offer(circulated["id"], **bad)
        assert response.status_code == 422, (bad, response.text)
    for who in ("state", "analyst", "officer", "admin", "auditor"):
        assert (await assist.offer(circulated["id"], who=who)).status_code == 403, who
    missing = await assist.offer("00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    offer = await assist.offer(circulated["id"])
    await assist["state"].post(f"/api/v1/offers/{offer.json()['id']}/accept")
    late = await assist.offer(circulated["id"])
    assert late.status_code == 409, "matched: offers are closed"


async def test_accepting_matches_the_request_and_closes_the_other_offers(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    first = (await assist.offer(request["id"])).json()
    second = (await assist.offer(request["id"], who="other_entity")).json()
    third = (await assist.offer(request["id"], who="other_entity", programme="Fusion Cells")).json()
    declined = await assist["state"].post(
        f"/api/v1/offers/{third['id']}/decline", json={"reason": "Overlaps a bilateral project."}
    )
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    accepted = await assist["state"].post(f"/api/v1/offers/{first['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    statuses = {
        o["id"]: o["status"]
        for o in (
            await assist["analyst"].get("/api/v1/offers", params={"request_id": request["id"]})
        ).json()["items"]
    }
    assert statuses == {
        first["id"]: "accepted",
        second["id"]: "not_selected",
        third["id"]: "declined",
    }
    matched = await assist["state"].get(f"/api/v1/assistance-requests/{request['id']}")
    assert matched.json()["status"] == "matched"
    assert matched.json()["history"][-1]["by_organization"] == assist.state.code
    again = await assist["state"].post(f"/api/v1/offers/{second['id']}/accept")
    assert again.status_code == 409
    events = {
        (row.event, str(row.object_id))
        for row in await assist.notifications(object_type="offer")
        if str(row.object_id) in {first["id"], second["id"], third["id"]}
    }
    assert {
        ("offer.accepted", first["id"]),
        ("offer.not_selected", second["id"]),
        ("offer.declined", third["id"]),
    } <= events
    audit = await audit_events(assist.database, action="offer.accept", object_id=first["id"])
    assert second["id"] in audit[0].details


async def test_two_simultaneous_acceptances_match_once(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    first = (await assist.offer(request["id"])).json()
    second = (await assist.offer(request["id"], who="other_entity")).json()
    answers = await asyncio.gather(
        assist["state"].post(f"/api/v1/offers/{first['id']}/accept"),
        assist["state"].post(f"/api/v1/offers/{second['id']}/accept"),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    offers = (
        await assist["analyst"].get("/api/v1/offers", params={"request_id": request["id"]})
    ).json()
    assert sorted(o["status"] for o in offers["items"]) == ["accepted", "not_selected"]


async def test_only_the_requests_state_decides(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    offer = (await assist.offer(request["id"])).json()
    path = f"/api/v1/offers/{offer['id']}/accept"
    assert (await assist["other_state"].post(path)).status_code == 404
    for who in ("entity", "analyst", "officer", "admin", "auditor"):
        assert (await assist[who].post(path)).status_code == 403, who
    assert (await assist["anonymous"].post(path)).status_code == 401
    assert (await assist["state"].get(f"/api/v1/offers/{offer['id']}")).status_code == 200
    assert (await assist["other_state"].get(f"/api/v1/offers/{offer['id']}")).status_code == 404


async def test_entities_see_only_their_own_offers(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    mine = (await assist.offer(request["id"])).json()
    theirs = (await assist.offer(request["id"], who="other_entity")).json()
    listed = (await assist["entity"].get("/api/v1/offers", params={"limit": 200})).json()["items"]
    assert mine["id"] in {o["id"] for o in listed} and theirs["id"] not in {o["id"] for o in listed}
    assert (await assist["entity"].get(f"/api/v1/offers/{theirs['id']}")).status_code == 404
    state_view = (
        await assist["state"].get("/api/v1/offers", params={"request_id": request["id"]})
    ).json()["items"]
    assert {o["id"] for o in state_view} == {mine["id"], theirs["id"]}


async def test_an_api_client_offers_with_the_offers_scope(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    payload = {"programme": "P", "description": "D", "timeline": "2027"}
    writer = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("offers:write",)),
    )
    reader = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("requests:read",)),
    )
    async with writer, reader:
        path = f"/api/v1/assistance-requests/{request['id']}/offers"
        made = await writer.post(path, json=payload)
        assert made.status_code == 201, made.text
        assert (await writer.get(f"/api/v1/offers/{made.json()['id']}")).status_code == 200
        refused = await reader.post(path, json=payload)
        assert (
            refused.status_code == 403
            and 'scope="offers:write"' in refused.headers["www-authenticate"]
        )


async def test_after_sharing_stops_an_entity_learns_nothing_more_about_its_offers(
    assist: Assist,
) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    offer = (await assist.offer(request["id"])).json()
    withdraw = f"/api/v1/states/{assist.state.code}/needs-consent/withdraw"
    assert (await assist["state"].post(withdraw, json={"reason": "x"})).status_code == 201
    assert (await assist["entity"].get(f"/api/v1/offers/{offer['id']}")).status_code == 404
    listed = await assist["entity"].get("/api/v1/offers", params={"limit": 200})
    assert offer["id"] not in {o["id"] for o in listed.json()["items"]}
    declined = await assist["state"].post(
        f"/api/v1/offers/{offer['id']}/decline", json={"reason": "A confidential reason."}
    )
    assert declined.status_code == 200
    assert await assist.notifications(object_id=offer["id"], event="offer.declined") == []


async def test_a_programme_name_longer_than_its_column_is_a_422(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    assert (await assist.offer(request["id"], programme="P" * 201)).status_code == 422
    assert (await assist.offer(request["id"], programme="P" * 200)).status_code == 201
