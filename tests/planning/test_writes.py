"""Recording and changing activities: who writes which, what is refused, and what the
audit log keeps.

An entity's focal points write the activities their organization leads, CTED analysts
any. Bad input (a lead that is no Compact entity, an unknown State, an end before the
start, a need of another State, a currency outside ISO 4217) answers a clear 4xx,
writes nothing, and leaves a denial in the audit log; so do a stale edit (409) and a
status that moves backwards.
"""

import uuid
from typing import Any

import httpx

from ctcp.organizations.models import Organization
from tests.assistance.conftest import Assist
from tests.factories import audit_events
from tests.planning.conftest import (
    activity_body,
    create_activity,
    details_of,
    events_of,
    new_entity,
    plan_with_measures,
    rows_of,
)

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def assert_refused(
    assist: Assist,
    response: httpx.Response,
    status: int,
    *,
    loc: str | None = None,
    state: Organization | None = None,
    written: int = 0,
) -> None:
    """Refused with `status` (naming the field `loc`), the State's activities as they
    were (`written` rows), and the refusal audited as a denied `activity.write`."""
    assert response.status_code == status, response.text
    if loc is not None:
        named = {str(part) for error in response.json()["errors"] for part in error["loc"]}
        assert loc in named, response.json()
    assert len(await rows_of(assist.database, state or assist.state)) == written
    [event] = await events_of(assist.database, response)
    assert (event.action, event.outcome) == ("activity.write", "denied")
    assert details_of(event)["status"] == status


async def test_an_entity_records_its_own_activity(assist: Assist) -> None:
    created = await assist["entity"].post(
        "/api/v1/activities",
        json=activity_body(
            assist.state.code, kind="training", programme="countering_terrorist_travel"
        ),
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["lead"]["code"] == assist.entity.code  # by default, the caller's own
    assert activity["state"]["code"] == assist.state.code
    assert (activity["status"], activity["version"]) == ("planned", 1)
    assert (activity["partners"], activity["need_ids"], activity["offer_id"]) == ([], [], None)
    assert created.headers["ETag"] == '"1"'
    [row] = await rows_of(assist.database, assist.state)
    assert str(row.id) == activity["id"] and row.lead_id == assist.entity.id
    assert (row.area, row.kind, row.programme) == (
        "border_management",
        "training",
        "countering_terrorist_travel",
    )
    [event] = await audit_events(assist.database, action="activity.create", object_id=str(row.id))
    assert details_of(event) == {
        "state": assist.state.code,
        "lead": assist.entity.code,
        "area": "border_management",
        "programme": "countering_terrorist_travel",
        "kind": "training",
        "title": "Border management training",
        "status": "planned",
        "starts_on": "2027-01-01",
        "ends_on": "2027-06-30",
        "budget": None,
        "currency": None,
        "partners": [],
        "need_ids": [],
        "measure_ids": [],
        "offer_id": None,
    }


async def test_an_analyst_records_an_activity_for_any_lead(assist: Assist) -> None:
    partner = await new_entity(assist, "partner")
    need = await assist.need()
    created = await assist["analyst"].post(
        "/api/v1/activities",
        json=activity_body(
            assist.state.code,
            lead=assist.other_entity.code,
            partners=[partner.code],
            need_ids=[need["id"]],
            budget="125000.50",
            currency="eur",
        ),
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["lead"]["code"] == assist.other_entity.code
    assert [p["code"] for p in activity["partners"]] == [partner.code]
    assert activity["need_ids"] == [need["id"]]
    assert (activity["budget"], activity["currency"]) == ("125000.50", "EUR")
    [row] = await rows_of(assist.database, assist.state)
    assert (row.lead_id, row.currency, str(row.budget)) == (
        assist.other_entity.id,
        "EUR",
        "125000.50",
    )
    # The lead and the partner read it; the lead keeps it.
    for who in ("other_entity", "partner"):
        read = await assist[who].get(f"/api/v1/activities/{activity['id']}")
        assert read.status_code == 200, who
    edited = await assist["other_entity"].patch(
        f"/api/v1/activities/{activity['id']}", json={"status": "ongoing"}
    )
    assert edited.status_code == 200, edited.text


async def test_an_entity_cannot_record_another_entitys_activity(assist: Assist) -> None:
    refused = await assist["entity"].post(
        "/api/v1/activities",
        json=activity_body(assist.state.code, lead=assist.other_entity.code),
    )
    await assert_refused(assist, refused, 403)
    for who in ("state", "officer"):
        response = await assist[who].post(
            "/api/v1/activities", json=activity_body(assist.state.code)
        )
        await assert_refused(assist, response, 403)


async def test_bad_input_is_refused_and_nothing_is_written(assist: Assist) -> None:
    other_need = await assist.need(assist.other_state)
    member_state = assist.other_state.code
    cases: list[tuple[dict[str, Any], str]] = [
        ({"lead": member_state}, "lead"),  # a Member State leads nothing
        ({"lead": "NOSUCHENTITY"}, "lead"),
        ({"partners": [member_state]}, "partners"),
        ({"partners": [assist.entity.code]}, "partners"),  # the lead is no partner
        ({"state": "NOSUCHSTATE"}, "state"),
        ({"state": assist.entity.code}, "state"),  # an entity is no State
        ({"area": "astrology"}, "area"),
        ({"ends_on": "2026-12-31"}, "body"),  # before 2027-01-01
        ({"need_ids": [other_need["id"]]}, "need_ids"),
        ({"need_ids": [UNKNOWN]}, "need_ids"),
        ({"currency": "XYZ", "budget": "1000"}, "currency"),
        ({"budget": "1000"}, "body"),  # a budget without its currency
        ({"currency": "USD"}, "body"),
        ({"budget": "-5", "currency": "USD"}, "budget"),
        ({"outputs": [{"name": "Participants trained", "value": 40}]}, "body"),
        ({"measure_ids": [UNKNOWN]}, "measure_ids"),
        ({"offer_id": UNKNOWN}, "offer_id"),
        ({"title": ""}, "title"),
        ({"starts_on": "not a date"}, "starts_on"),
    ]
    for changes, loc in cases:
        body = activity_body(assist.state.code) | changes
        refused = await assist["analyst"].post(
            "/api/v1/activities", json=body | {"lead": changes.get("lead", assist.entity.code)}
        )
        await assert_refused(assist, refused, 422, loc=loc)
    # A body that is no JSON object at all.
    refused = await assist["entity"].post("/api/v1/activities", json=["not", "an", "object"])
    await assert_refused(assist, refused, 422)
    assert await rows_of(assist.database, assist.other_state) == []


async def test_a_need_must_be_one_the_entity_may_know_of(assist: Assist) -> None:
    """An entity names only the needs the State shares with it; an unshared need of the
    right State is refused like another State's, so the answer tells nothing of it."""
    need = await assist.need()
    refused = await assist["entity"].post(
        "/api/v1/activities", json=activity_body(assist.state.code, need_ids=[need["id"]])
    )
    await assert_refused(assist, refused, 422, loc="need_ids")
    await assist.share_needs()
    created = await assist["entity"].post(
        "/api/v1/activities", json=activity_body(assist.state.code, need_ids=[need["id"]])
    )
    assert created.status_code == 201, created.text
    assert created.json()["need_ids"] == [need["id"]]


async def test_an_entity_cannot_change_another_entitys_activity(assist: Assist) -> None:
    """Even as a partner, who reads it: the lead keeps it (404 to the partner)."""
    theirs = await create_activity(
        assist, "analyst", lead=assist.other_entity.code, partners=[assist.entity.code]
    )
    path = f"/api/v1/activities/{theirs['id']}"
    assert (await assist["entity"].get(path)).status_code == 200
    for who in ("entity", "state"):
        refused = await assist[who].patch(path, json={"status": "ongoing"})
        assert refused.status_code == (404 if who == "entity" else 403), refused.text
        [event] = await events_of(assist.database, refused)
        assert (event.action, event.outcome) == ("activity.write", "denied")
        assert event.object_id == theirs["id"]
    missing = await assist["entity"].patch(f"/api/v1/activities/{UNKNOWN}", json={"title": "T"})
    assert missing.status_code == 404
    [row] = await rows_of(assist.database, assist.state)
    assert (row.status, row.version) == ("planned", 1)


async def test_a_status_moves_forward_only_and_is_audited_with_before_and_after(
    assist: Assist,
) -> None:
    activity = await create_activity(assist)
    path = f"/api/v1/activities/{activity['id']}"
    started = await assist["entity"].patch(path, json={"status": "ongoing", "version": 1})
    assert started.status_code == 200, started.text
    assert (started.json()["status"], started.json()["version"]) == ("ongoing", 2)
    assert started.headers["ETag"] == '"2"'
    [event] = await events_of(assist.database, started)
    assert (event.action, event.outcome, event.object_id) == (
        "activity.update",
        "allowed",
        activity["id"],
    )
    assert details_of(event) == {"status": {"before": "planned", "after": "ongoing"}, "version": 2}

    outputs = [
        {"name": "Border guards trained", "value": 40, "unit": "people"},
        {"name": "Standard operating procedures adopted", "value": 2},
    ]
    done = await assist["entity"].patch(
        path, json={"status": "completed", "outputs": outputs}, headers={"If-Match": '"2"'}
    )
    assert done.status_code == 200, done.text
    assert done.json()["outputs"] == outputs and done.json()["version"] == 3
    [event] = await events_of(assist.database, done)
    assert details_of(event)["status"] == {"before": "ongoing", "after": "completed"}
    assert details_of(event)["outputs"]["after"] == outputs

    back = await assist["entity"].patch(path, json={"status": "planned"})
    await assert_refused(assist, back, 409, written=1)
    [row] = await rows_of(assist.database, assist.state)
    assert (row.status, row.version) == ("completed", 3)


async def test_a_cancelled_activity_is_final(assist: Assist) -> None:
    activity = await create_activity(assist, status="ongoing")
    path = f"/api/v1/activities/{activity['id']}"
    cancelled = await assist["entity"].patch(path, json={"status": "cancelled"})
    assert cancelled.status_code == 200, cancelled.text
    for status in ("planned", "ongoing", "completed"):
        refused = await assist["entity"].patch(path, json={"status": status})
        await assert_refused(assist, refused, 409, written=1)
    [row] = await rows_of(assist.database, assist.state)
    assert (row.status, row.version) == ("cancelled", 2)


async def test_outputs_belong_to_a_completed_activity(assist: Assist) -> None:
    activity = await create_activity(assist)
    path = f"/api/v1/activities/{activity['id']}"
    outputs = [{"name": "Participants trained", "value": 12}]
    refused = await assist["entity"].patch(path, json={"outputs": outputs})
    await assert_refused(assist, refused, 422, loc="outputs", written=1)
    for bad in ([{"name": "", "value": 1}], [{"name": "Trained", "value": -1}]):
        refused = await assist["entity"].patch(path, json={"status": "completed", "outputs": bad})
        await assert_refused(assist, refused, 422, written=1)
    [row] = await rows_of(assist.database, assist.state)
    assert (row.status, row.outputs, row.version) == ("planned", [], 1)
    # Recorded whole with the completion.
    completed = await create_activity(assist, status="completed", outputs=outputs)
    assert completed["outputs"] == outputs


async def test_a_stale_edit_is_refused_and_writes_nothing(assist: Assist) -> None:
    activity = await create_activity(assist)
    path = f"/api/v1/activities/{activity['id']}"
    first = await assist["analyst"].patch(path, json={"title": "Renamed by CTED", "version": 1})
    assert first.status_code == 200 and first.json()["version"] == 2
    read = await assist["entity"].get(path)
    assert read.headers["ETag"] == '"2"'
    stale_body = await assist["entity"].patch(path, json={"title": "Mine", "version": 1})
    await assert_refused(assist, stale_body, 409, written=1)
    stale_header = await assist["entity"].patch(
        path, json={"title": "Mine"}, headers={"If-Match": '"1"'}
    )
    await assert_refused(assist, stale_header, 409, written=1)
    [row] = await rows_of(assist.database, assist.state)
    assert (row.title, row.version) == ("Renamed by CTED", 2)
    disagreeing = await assist["entity"].patch(
        path, json={"title": "Mine", "version": 2}, headers={"If-Match": '"1"'}
    )
    await assert_refused(assist, disagreeing, 422, loc="version", written=1)
    current = await assist["entity"].patch(
        path, json={"title": "Mine"}, headers={"If-Match": read.headers["ETag"]}
    )
    assert current.status_code == 200 and current.json()["version"] == 3


async def test_bad_edits_are_refused_and_write_nothing(assist: Assist) -> None:
    activity = await create_activity(assist)
    path = f"/api/v1/activities/{activity['id']}"
    other_need = await assist.need(assist.other_state)
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"ends_on": "2026-06-30"}, "ends_on"),  # before the stored start
        ({"starts_on": "2027-06-01", "ends_on": "2027-01-01"}, None),
        ({"budget": "100"}, None),  # no currency stored
        ({"budget": "100", "currency": "XYZ"}, "currency"),
        ({"need_ids": [other_need["id"]]}, "need_ids"),
        ({"partners": [assist.other_state.code]}, "partners"),
        ({"title": None}, None),  # a required field cannot be emptied
        ({"status": "paused"}, "status"),
        ({"version": 0}, "version"),
    ]
    for changes, loc in cases:
        refused = await assist["entity"].patch(path, json=changes)
        await assert_refused(assist, refused, 422, loc=loc, written=1)
    [row] = await rows_of(assist.database, assist.state)
    assert (row.version, row.budget, row.ends_on.isoformat() if row.ends_on else None) == (
        1,
        None,
        "2027-06-30",
    )
    # Nothing changed: no new version, no update event.
    assert (
        await audit_events(assist.database, action="activity.update", object_id=activity["id"])
        == []
    )


async def test_the_budget_changes_alone_when_a_currency_is_stored(assist: Assist) -> None:
    activity = await create_activity(assist, budget="1000.00", currency="USD")
    path = f"/api/v1/activities/{activity['id']}"
    raised = await assist["entity"].patch(path, json={"budget": "1500.00"})
    assert raised.status_code == 200, raised.text
    assert (raised.json()["budget"], raised.json()["currency"]) == ("1500.00", "USD")
    moved = await assist["entity"].patch(path, json={"currency": "EUR"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["budget"], moved.json()["currency"]) == ("1500.00", "EUR")


async def test_an_activity_carries_out_plan_measures_in_the_leads_charge(assist: Assist) -> None:
    plan = await plan_with_measures(assist, assist.state)
    mine, theirs = (m["id"] for m in plan["measures"])
    elsewhere = (await plan_with_measures(assist, assist.other_state))["measures"][0]["id"]
    created = await assist["entity"].post(
        "/api/v1/activities", json=activity_body(assist.state.code, measure_ids=[mine])
    )
    assert created.status_code == 201, created.text
    assert created.json()["measure_ids"] == [mine]
    for measure_id in (theirs, elsewhere, mine):  # another's; another State's; taken
        refused = await assist["entity"].post(
            "/api/v1/activities", json=activity_body(assist.state.code, measure_ids=[measure_id])
        )
        await assert_refused(assist, refused, 422, loc="measure_ids", written=1)
    # Let go by its activity, the measure can be carried out by another.
    path = f"/api/v1/activities/{created.json()['id']}"
    released = await assist["entity"].patch(path, json={"measure_ids": []})
    assert released.status_code == 200 and released.json()["measure_ids"] == []
    [event] = await events_of(assist.database, released)
    assert details_of(event)["measure_ids"] == {"before": [mine], "after": []}
    again = await create_activity(assist, measure_ids=[mine])
    assert again["measure_ids"] == [mine]
    # CTED links the other entity's measure to an activity that entity leads.
    theirs_activity = await create_activity(
        assist, "analyst", lead=assist.other_entity.code, measure_ids=[theirs]
    )
    assert theirs_activity["measure_ids"] == [theirs]


async def test_accepting_an_offer_plans_one_activity(assist: Assist) -> None:
    await assist.share_needs()
    needs = [await assist.need(area="legislation"), await assist.need(area="legislation")]
    request = await assist.circulated(*needs)
    offer = await assist.offer(request["id"], budget="250000.00", currency="USD")
    assert offer.status_code == 201, offer.text
    other_offer = await assist.offer(request["id"], who="other_entity")
    assert other_offer.status_code == 201, other_offer.text
    assert await rows_of(assist.database, assist.state) == []

    offer_id = offer.json()["id"]
    accepted = await assist["state"].post(f"/api/v1/offers/{offer_id}/accept")
    assert accepted.status_code == 200, accepted.text

    [row] = await rows_of(assist.database, assist.state)
    assert (row.lead_id, row.state_id, row.status) == (
        assist.entity.id,
        assist.state.id,
        "planned",
    )
    assert row.offer_id == uuid.UUID(offer_id) and row.area == "legislation"
    # The offer's budget stays the offer's: the lead states the activity's own.
    assert (row.budget, row.currency) == (None, None)
    activity = (await assist["entity"].get(f"/api/v1/activities/{row.id}")).json()
    assert sorted(activity["need_ids"]) == sorted(n["id"] for n in needs)
    # The offer's programme, in words, is the platform's programme it names.
    assert activity["programme"] == "countering_terrorist_travel"
    assert activity["offer_id"] == offer_id
    [event] = await audit_events(assist.database, action="activity.create", object_id=str(row.id))
    assert details_of(event)["from_offer"] == offer_id
    assert details_of(event)["request_id"] == request["id"]
    assert event.request_id == accepted.headers["X-Request-ID"]

    # One activity per offer: recording the offer again is a conflict.
    again = await assist["entity"].post(
        "/api/v1/activities", json=activity_body(assist.state.code, offer_id=offer_id)
    )
    await assert_refused(assist, again, 409, written=1)
    # The offer not selected plans nothing.
    not_selected = await assist["other_entity"].post(
        "/api/v1/activities",
        json=activity_body(assist.state.code, offer_id=other_offer.json()["id"]),
    )
    await assert_refused(assist, not_selected, 422, loc="offer_id", written=1)
