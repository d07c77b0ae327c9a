"""Who reads which activity: its lead and partners always, the Secretariat all, the State
its own, and other Compact entities only while the State shares its needs.

Another Compact entity reads an activity only while the State's needs-sharing decision
is in force and every need the activity answers is shared; anything else answers 404 on
the detail and is left out of the list, the export and the matrix, for people and for
API clients (`activities:read`) alike.
"""

import csv
import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ctcp.organizations.models import Organization
from tests.assistance.conftest import Assist
from tests.factories import bearer_http, make_api_client
from tests.planning.conftest import (
    activity_body,
    cells_of,
    create_activity,
    details_of,
    events_of,
    new_entity,
    plan_with_measures,
    withdraw_needs,
)

# Who always reads the State's activities, shared or not.
ALWAYS = ("entity", "partner", "analyst", "officer", "state")


@dataclass
class Planned:
    """Three activities of the State, led by `entity` with `partner` beside it: one that
    answers no need, one that answers a need the State shares by its needs-sharing
    decision, and one that answers a need from a report recommendation that no consent
    shares."""

    partner: Organization
    plain: dict[str, Any]
    shared_need: dict[str, Any]
    unshared_need: dict[str, Any]

    @property
    def all(self) -> dict[str, dict[str, Any]]:
        return {
            "plain": self.plain,
            "shared_need": self.shared_need,
            "unshared_need": self.unshared_need,
        }


async def _recommendation_need(assist: Assist) -> dict[str, Any]:
    """A need from an adopted report's recommendation: shared only by consent on the
    report, never by the State's needs-sharing decision."""
    report = await assist.adopted_report()
    border = next(s for s in report["sections"] if s["area"] == "border_management")
    created = await assist["analyst"].post(
        "/api/v1/needs",
        json={
            "state": assist.state.code,
            "description": "Advance passenger information system.",
            "priority": "high",
            "source": "recommendation",
            "recommendation_id": border["recommendations"][0]["id"],
        },
    )
    assert created.status_code == 201, created.text
    need: dict[str, Any] = created.json()
    return need


@pytest.fixture
async def planned(assist: Assist) -> Planned:
    partner = await new_entity(assist, "partner")
    common = {"lead": assist.entity.code, "partners": [partner.code]}
    return Planned(
        partner,
        plain=await create_activity(assist, "analyst", **common),
        shared_need=await create_activity(
            assist, "analyst", need_ids=[(await assist.need())["id"]], **common
        ),
        unshared_need=await create_activity(
            assist, "analyst", need_ids=[(await _recommendation_need(assist))["id"]], **common
        ),
    )


async def listed(client: httpx.AsyncClient, **params: Any) -> set[str]:
    response = await client.get("/api/v1/activities", params={"limit": 200} | params)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def exported(client: httpx.AsyncClient, state: Organization) -> set[str]:
    response = await client.get(
        "/api/v1/activities/export", params={"format": "csv", "state": state.code}
    )
    assert response.status_code == 200, response.text
    return {row["id"] for row in csv.DictReader(io.StringIO(response.text))}


async def status_of(client: httpx.AsyncClient, activity: dict[str, Any]) -> int:
    return (await client.get(f"/api/v1/activities/{activity['id']}")).status_code


async def test_the_lead_partners_secretariat_and_state_read_without_sharing(
    assist: Assist, planned: Planned
) -> None:
    everything = {a["id"] for a in planned.all.values()}
    for who in ALWAYS:
        for name, activity in planned.all.items():
            response = await assist[who].get(f"/api/v1/activities/{activity['id']}")
            assert response.status_code == 200, (who, name, response.text)
            assert response.json()["lead"]["code"] == assist.entity.code
            assert response.headers["ETag"] == '"1"'
        assert await listed(assist[who], state=assist.state.code) == everything, who
        assert await exported(assist[who], assist.state) == everything, who


async def test_without_sharing_another_entity_and_another_state_learn_nothing(
    assist: Assist, planned: Planned
) -> None:
    for who in ("other_entity", "other_state"):
        for name, activity in planned.all.items():
            response = await assist[who].get(f"/api/v1/activities/{activity['id']}")
            assert response.status_code == 404, (who, name, response.text)
            assert response.json()["detail"] == "No such activity."
            [event] = await events_of(assist.database, response)
            assert (event.action, event.outcome) == ("activity.read", "denied")
            assert event.object_id == activity["id"]
            assert details_of(event)["status"] == 404
        assert await listed(assist[who], state=assist.state.code) == set(), who
        assert not await listed(assist[who]) & {a["id"] for a in planned.all.values()}, who
        assert await exported(assist[who], assist.state) == set(), who
        assert await cells_of(assist[who], assist.state) == {}, who


async def test_another_entity_reads_while_the_state_shares_and_every_need_is_shared(
    assist: Assist, planned: Planned
) -> None:
    await assist.share_needs()
    readable = {planned.plain["id"], planned.shared_need["id"]}
    stranger = assist["other_entity"]
    assert await status_of(stranger, planned.plain) == 200
    assert await status_of(stranger, planned.shared_need) == 200
    # Its need comes from a report that no consent shares: the activity stays hidden.
    assert await status_of(stranger, planned.unshared_need) == 404
    assert await listed(stranger, state=assist.state.code) == readable
    assert await exported(stranger, assist.state) == readable
    [cell] = (await cells_of(stranger, assist.state)).values()
    assert cell["activities"]["planned"] == 2
    # Sharing reaches the Compact, never another State.
    for activity in planned.all.values():
        assert await status_of(assist["other_state"], activity) == 404
    assert await listed(assist["other_state"], state=assist.state.code) == set()

    await withdraw_needs(assist)
    for activity in planned.all.values():
        assert await status_of(stranger, activity) == 404
    assert await listed(stranger, state=assist.state.code) == set()
    assert await exported(stranger, assist.state) == set()
    assert await cells_of(stranger, assist.state) == {}
    # The lead and the partner keep reading their work.
    for who in ("entity", "partner"):
        assert await listed(assist[who], state=assist.state.code) == {
            a["id"] for a in planned.all.values()
        }


async def test_a_need_of_the_activity_no_longer_shared_hides_it(
    assist: Assist, planned: Planned
) -> None:
    """The State shares, but the activity comes to answer a need from a report that no
    consent shares: the activity leaves the other entities' reach."""
    await assist.share_needs()
    stranger = assist["other_entity"]
    need_id = planned.shared_need["need_ids"][0]
    assert await status_of(stranger, planned.shared_need) == 200
    # CTED links the unshared need too: the activity now answers one need not shared.
    unshared = planned.unshared_need["need_ids"][0]
    edited = await assist["analyst"].patch(
        f"/api/v1/activities/{planned.shared_need['id']}", json={"need_ids": [need_id, unshared]}
    )
    assert edited.status_code == 200, edited.text
    assert await status_of(stranger, planned.shared_need) == 404
    assert planned.shared_need["id"] not in await listed(stranger, state=assist.state.code)


async def test_roles_without_activities_are_refused(assist: Assist, planned: Planned) -> None:
    paths = (
        "/api/v1/activities",
        f"/api/v1/activities/{planned.plain['id']}",
        "/api/v1/activities/export",
        "/api/v1/coordination/matrix",
        "/api/v1/coordination/entities",
    )
    for who in ("admin", "auditor"):
        for path in paths:
            response = await assist[who].get(path)
            assert response.status_code == 403, (who, path, response.text)
            [event] = await events_of(assist.database, response)
            assert (event.action, event.outcome) == ("activity.read", "denied")
            assert details_of(event)["reason"] == "role"
    for path in paths:
        assert (await assist["anonymous"].get(path)).status_code == 401, path


async def test_reads_are_audited_with_the_ids_shown(assist: Assist, planned: Planned) -> None:
    activity_id = planned.plain["id"]
    read = await assist["partner"].get(f"/api/v1/activities/{activity_id}")
    [event] = await events_of(assist.database, read)
    assert (event.action, event.object_id, event.outcome) == (
        "activity.read",
        activity_id,
        "allowed",
    )
    assert event.actor_organization == planned.partner.code
    shown = {a["id"] for a in planned.all.values()}
    page = await assist["state"].get("/api/v1/activities", params={"state": assist.state.code})
    [event] = await events_of(assist.database, page)
    assert event.action == "activity.list" and set(details_of(event)["ids"]) == shown
    export = await assist["entity"].get(
        "/api/v1/activities/export", params={"format": "csv", "state": assist.state.code}
    )
    [event] = await events_of(assist.database, export)
    assert event.action == "activity.export"
    assert details_of(event)["format"] == "csv"
    assert set(details_of(event)["ids"]) == shown and details_of(event)["count"] == 3


async def test_an_api_client_reads_what_its_entity_reads(assist: Assist, planned: Planned) -> None:
    lead_system = await make_api_client(
        assist.database, org=assist.entity, scopes=("activities:read",)
    )
    other_system = await make_api_client(
        assist.database, org=assist.other_entity, scopes=("activities:read",)
    )
    async with (
        await bearer_http(assist.app, lead_system) as lead,
        await bearer_http(assist.app, other_system) as stranger,
    ):
        # Its own organization's work, whether or not the State shares.
        assert await listed(lead, state=assist.state.code) == {
            a["id"] for a in planned.all.values()
        }
        assert await status_of(stranger, planned.plain) == 404
        assert await listed(stranger, state=assist.state.code) == set()
        assert await cells_of(stranger, assist.state) == {}
        await assist.share_needs()
        shown = await stranger.get(f"/api/v1/activities/{planned.plain['id']}")
        assert shown.status_code == 200
        assert await status_of(stranger, planned.unshared_need) == 404
        assert await exported(stranger, assist.state) == {
            planned.plain["id"],
            planned.shared_need["id"],
        }
        assert set(await cells_of(stranger, assist.state)) == {
            (assist.state.code, "border_management")
        }
        # Reading is all the scope opens.
        created = await lead.post("/api/v1/activities", json=activity_body(assist.state.code))
        assert created.status_code == 403
    [event] = await events_of(assist.database, shown)
    assert (event.action, event.actor_client_id) == ("activity.read", other_system.client_id)


async def test_an_api_client_without_activities_read_is_refused(
    assist: Assist, planned: Planned
) -> None:
    await assist.share_needs()
    credentials = await make_api_client(
        assist.database, org=assist.entity, scopes=("needs:read", "activities:read")
    )
    async with await bearer_http(assist.app, credentials, scope="needs:read") as machine:
        responses = [
            await machine.get("/api/v1/activities"),
            await machine.get(f"/api/v1/activities/{planned.plain['id']}"),
            await machine.get("/api/v1/activities/export"),
            await machine.get("/api/v1/coordination/matrix"),
        ]
    for response in responses:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "insufficient_scope"
        assert 'scope="activities:read"' in response.headers["www-authenticate"]
        [event] = await events_of(assist.database, response)
        assert (event.action, event.outcome) == ("activity.read", "denied")
        assert event.actor_client_id == credentials.client_id
        assert details_of(event)["reason"] == "scope"


async def test_the_ties_to_needs_measures_and_offers_show_as_the_reader_may_see_them(
    assist: Assist, planned: Planned
) -> None:
    """The Secretariat and the State see every need, measure and offer an activity is tied
    to; the lead and the partners only the needs shared now, and the measures only the
    lead."""
    await assist.share_needs()
    shared = planned.shared_need["need_ids"][0]
    unshared = planned.unshared_need["need_ids"][0]
    mine = (await plan_with_measures(assist, assist.state))["measures"][0]["id"]
    path = f"/api/v1/activities/{planned.plain['id']}"
    tied = await assist["analyst"].patch(
        path, json={"need_ids": [shared, unshared], "measure_ids": [mine]}
    )
    assert tied.status_code == 200, tied.text
    seen = {
        who: (await assist[who].get(path)).json()
        for who in ("analyst", "state", "entity", "partner")
    }
    for who in ("analyst", "state"):
        assert seen[who]["need_ids"] == sorted([shared, unshared]), who
        assert seen[who]["measure_ids"] == [mine], who
    assert (seen["entity"]["need_ids"], seen["entity"]["measure_ids"]) == ([shared], [mine])
    assert (seen["partner"]["need_ids"], seen["partner"]["measure_ids"]) == ([shared], [])
    # The lead drops the ties it sees; the one it never saw stays.
    dropped = await assist["entity"].patch(path, json={"need_ids": []})
    assert dropped.status_code == 200 and dropped.json()["need_ids"] == []
    assert (await assist["analyst"].get(path)).json()["need_ids"] == [unshared]
