"""The coordination matrix: one cell per State and area (or programme), with the open
needs, the activities by status, the entities at work and two flags.

`gap`: open needs and no planned or ongoing activity. `overlap`: two or more lead
entities with planned or ongoing activities whose periods overlap. A Compact entity gets
no cell at all, not even zeros, for a State whose needs-sharing decision is not in
force; a State's focal point gets its own row only.
"""

from importlib import resources
from typing import Any

import pytest
from sqlmodel import col, select

from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.assistance.conftest import Assist
from tests.factories import make_org
from tests.planning.conftest import (
    cells_of,
    create_activity,
    details_of,
    events_of,
    new_entity,
    withdraw_needs,
)

REGIONAL_GROUPS = resources.files("ctcp.data").joinpath("regional_groups.csv")


async def at_work(
    assist: Assist, area: str, lead: Organization, status: str = "planned", **changes: Any
) -> dict[str, Any]:
    """An activity CTED records for `lead` in the State."""
    return await create_activity(
        assist, "analyst", area=area, lead=lead.code, status=status, **changes
    )


async def test_a_gap_is_open_needs_with_no_planned_or_ongoing_activity(assist: Assist) -> None:
    # border_management: an open need; the only work there is completed or cancelled.
    await assist.need(area="border_management")
    met = await assist.need(area="border_management")
    closed = await assist["analyst"].patch(f"/api/v1/needs/{met['id']}", json={"status": "met"})
    assert closed.status_code == 200, closed.text
    await at_work(assist, "border_management", assist.entity, "completed")
    await at_work(assist, "border_management", assist.other_entity, "cancelled")
    # legislation: an open need and an entity at work on it, with a partner.
    await assist.need(area="legislation")
    partner = await new_entity(assist, "partner")
    await at_work(assist, "legislation", assist.entity, "ongoing", partners=[partner.code])
    # human_rights: work, and no need.
    await at_work(assist, "human_rights", assist.other_entity)

    cells = await cells_of(assist["analyst"], assist.state)
    state = assist.state.code
    assert set(cells) == {
        (state, "border_management"),
        (state, "legislation"),
        (state, "human_rights"),
    }
    border = cells[(state, "border_management")]
    assert border["open_needs"] == 1 and border["gap"] is True
    assert border["activities"] == {
        "planned": 0,
        "ongoing": 0,
        "completed": 1,
        "cancelled": 1,
        "total": 2,
    }
    # Nobody is at work in a cell whose work is over.
    assert border["entities"] == []
    legislation = cells[(state, "legislation")]
    assert (legislation["open_needs"], legislation["gap"]) == (1, False)
    assert legislation["entities"] == sorted([assist.entity.code, partner.code])
    human_rights = cells[(state, "human_rights")]
    assert (human_rights["open_needs"], human_rights["gap"]) == (0, False)

    # Planned work closes the gap.
    await at_work(assist, "border_management", assist.other_entity)
    border = (await cells_of(assist["analyst"], assist.state))[(state, "border_management")]
    assert border["gap"] is False and border["activities"]["planned"] == 1
    assert border["entities"] == [assist.other_entity.code]


async def test_an_overlap_is_two_leads_at_work_in_overlapping_periods(assist: Assist) -> None:
    entity, other = assist.entity, assist.other_entity
    # Two leads, overlapping periods: an overlap.
    await at_work(assist, "law_enforcement", entity, starts_on="2027-01-01", ends_on="2027-06-30")
    await at_work(
        assist, "law_enforcement", other, "ongoing", starts_on="2027-06-30", ends_on="2027-12-31"
    )
    # One lead twice: no overlap, however the periods fall.
    await at_work(assist, "legislation", entity, starts_on="2027-01-01", ends_on="2027-06-30")
    await at_work(assist, "legislation", entity, starts_on="2027-03-01", ends_on="2027-09-30")
    # Two leads, one after the other: no overlap.
    await at_work(assist, "human_rights", entity, starts_on="2027-01-01", ends_on="2027-03-31")
    await at_work(assist, "human_rights", other, starts_on="2027-04-01", ends_on="2027-06-30")
    # An activity with no end runs on, and overlaps one that starts years later.
    await at_work(assist, "counter_financing", entity, starts_on="2027-01-01", ends_on=None)
    await at_work(assist, "counter_financing", other, starts_on="2031-01-01", ends_on="2031-03-31")
    # Cancelled or completed work never overlaps.
    await at_work(
        assist, "critical_infrastructure", entity, starts_on="2027-01-01", ends_on="2027-12-31"
    )
    await at_work(
        assist,
        "critical_infrastructure",
        other,
        "cancelled",
        starts_on="2027-01-01",
        ends_on="2027-12-31",
    )
    await at_work(
        assist,
        "critical_infrastructure",
        other,
        "completed",
        starts_on="2027-02-01",
        ends_on="2027-03-31",
    )

    cells = await cells_of(assist["analyst"], assist.state)
    overlaps = {area: cell["overlap"] for (_, area), cell in cells.items()}
    assert overlaps == {
        "law_enforcement": True,
        "legislation": False,
        "human_rights": False,
        "counter_financing": True,
        "critical_infrastructure": False,
    }
    assert cells[(assist.state.code, "law_enforcement")]["entities"] == sorted(
        [entity.code, other.code]
    )
    assert cells[(assist.state.code, "critical_infrastructure")]["entities"] == [entity.code]

    # Cancelling one of the two takes the overlap away.
    later = await at_work(
        assist, "international_cooperation", other, starts_on="2027-05-01", ends_on="2027-05-31"
    )
    await at_work(assist, "international_cooperation", entity, starts_on="2027-01-01")
    key = (assist.state.code, "international_cooperation")
    assert (await cells_of(assist["analyst"], assist.state))[key]["overlap"] is True
    cancelled = await assist["analyst"].patch(
        f"/api/v1/activities/{later['id']}", json={"status": "cancelled"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await cells_of(assist["analyst"], assist.state))[key]["overlap"] is False


async def test_an_entity_gets_a_states_cells_only_while_it_shares(assist: Assist) -> None:
    await assist.need(area="legislation")
    led = await create_activity(assist, "entity")
    assert led["lead"]["code"] == assist.entity.code
    # It leads work there, yet the State does not share: no cell, not even zeros.
    refused = await assist["entity"].get("/api/v1/coordination/matrix")
    assert refused.status_code == 200
    assert assist.state.code not in {cell["state"] for cell in refused.json()["cells"]}
    [event] = await events_of(assist.database, refused)
    assert (event.action, event.outcome) == ("activity.matrix", "allowed")
    assert assist.state.code not in details_of(event)["states"]
    summaries = await assist["entity"].get("/api/v1/coordination/entities")
    assert assist.entity.code not in {s["entity"] for s in summaries.json()}
    # Its own activity stays readable to it all the while.
    assert (await assist["entity"].get(f"/api/v1/activities/{led['id']}")).status_code == 200

    await assist.share_needs()
    shared = await assist["entity"].get("/api/v1/coordination/matrix")
    cells = {(c["state"], c["area"]): c for c in shared.json()["cells"]}
    state = assist.state.code
    assert cells[(state, "border_management")]["activities"]["planned"] == 1
    assert cells[(state, "border_management")]["entities"] == [assist.entity.code]
    assert cells[(state, "legislation")]["open_needs"] == 1
    assert cells[(state, "legislation")]["gap"] is True
    [event] = await events_of(assist.database, shared)
    assert state in details_of(event)["states"]
    # The other entity sees the same cells: they belong to the State, not to the lead.
    assert set(await cells_of(assist["other_entity"], assist.state)) == {
        (state, "border_management"),
        (state, "legislation"),
    }

    await withdraw_needs(assist)
    for who in ("entity", "other_entity"):
        assert await cells_of(assist[who], assist.state) == {}, who


async def test_a_state_gets_its_own_row_only(assist: Assist) -> None:
    await assist.share_needs(assist.other_state)
    await create_activity(assist, "analyst", lead=assist.entity.code)
    await create_activity(assist, "analyst", state=assist.other_state, lead=assist.entity.code)
    await assist.need(assist.other_state, area="legislation")
    for who, state in (("state", assist.state), ("other_state", assist.other_state)):
        response = await assist[who].get("/api/v1/coordination/matrix")
        assert response.status_code == 200, response.text
        assert {cell["state"] for cell in response.json()["cells"]} == {state.code}, who
    own = await cells_of(assist["other_state"])
    assert set(own) == {
        (assist.other_state.code, "border_management"),
        (assist.other_state.code, "legislation"),
    }


async def test_filters_by_area_programme_and_year(assist: Assist) -> None:
    programme = "fusion_cells"
    state = assist.state.code
    await at_work(
        assist,
        "legislation",
        assist.entity,
        programme=programme,
        starts_on="2026-11-01",
        ends_on="2027-02-28",
    )
    await at_work(
        assist,
        "legislation",
        assist.other_entity,
        programme=programme,
        starts_on="2029-01-01",
        ends_on="2029-12-31",
    )
    await at_work(assist, "legislation", assist.entity, starts_on="2025-01-01", ends_on=None)
    await at_work(assist, "human_rights", assist.entity, programme=programme)

    by_area = await cells_of(assist["analyst"], assist.state, area="legislation")
    assert set(by_area) == {(state, "legislation")}
    assert by_area[(state, "legislation")]["activities"]["planned"] == 3

    in_programme = await cells_of(assist["analyst"], assist.state, programme=programme)
    assert {key: cell["activities"]["planned"] for key, cell in in_programme.items()} == {
        (state, "legislation"): 2,
        (state, "human_rights"): 1,
    }

    def planned(cells: dict[Any, dict[str, Any]]) -> dict[Any, int]:
        return {key: cell["activities"]["planned"] for key, cell in cells.items()}

    # A period touches a year when it starts before its end and ends after its start;
    # the open-ended one touches every year from its start on.
    assert planned(await cells_of(assist["analyst"], assist.state, year=2027)) == {
        (state, "legislation"): 2,
        (state, "human_rights"): 1,
    }
    assert planned(await cells_of(assist["analyst"], assist.state, year=2026)) == {
        (state, "legislation"): 2
    }
    assert planned(await cells_of(assist["analyst"], assist.state, year=2029)) == {
        (state, "legislation"): 2
    }
    assert await cells_of(assist["analyst"], assist.state, year=2024) == {}
    matrix = await assist["analyst"].get("/api/v1/coordination/matrix", params={"year": 2026})
    assert (matrix.json()["by"], matrix.json()["year"]) == ("area", 2026)
    [event] = await events_of(assist.database, matrix)
    assert details_of(event)["year"] == 2026 and state in details_of(event)["states"]
    for bad in ({"area": "astrology"}, {"year": 1066}, {"by": "lead"}, {"region": "atlantis"}):
        response = await assist["analyst"].get("/api/v1/coordination/matrix", params=bad)
        assert response.status_code == 422, bad


async def consultation_need(assist: Assist, area: str = "border_management") -> dict[str, Any]:
    """A need from a capacity consultation under `countering_terrorist_travel`."""
    plan = await assist["analyst"].post(
        "/api/v1/consultations",
        json={
            "state": assist.state.code,
            "programme": "countering_terrorist_travel",
            "start_date": "2026-05-04",
            "end_date": "2026-05-06",
            "participants": [],
            "baseline_findings": "No API system in place.",
            "measures": [],
        },
    )
    assert plan.status_code == 201, plan.text
    return await assist.need(area=area, source="consultation", consultation_id=plan.json()["id"])


async def test_by_programme_counts_consultation_needs_under_their_programme(
    assist: Assist,
) -> None:
    await consultation_need(assist)
    await at_work(assist, "legislation", assist.entity)  # no programme: in no column
    other = "fusion_cells"
    await at_work(assist, "legislation", assist.entity, programme=other)

    response = await assist["analyst"].get(
        "/api/v1/coordination/matrix", params={"by": "programme"}
    )
    assert response.status_code == 200 and response.json()["by"] == "programme"
    cells = {
        (c["state"], c["programme"]): c
        for c in response.json()["cells"]
        if c["state"] == assist.state.code
    }
    travel = (assist.state.code, "countering_terrorist_travel")
    assert set(cells) == {travel, (assist.state.code, other)}
    assert all(cell["area"] is None for cell in cells.values())
    assert (cells[travel]["open_needs"], cells[travel]["gap"]) == (1, True)
    assert cells[(assist.state.code, other)]["activities"]["planned"] == 1

    await at_work(
        assist, "border_management", assist.other_entity, programme="countering_terrorist_travel"
    )
    closed = await cells_of(assist["analyst"], assist.state, by="programme")
    assert closed[travel]["gap"] is False
    assert closed[travel]["entities"] == [assist.other_entity.code]


async def test_a_programme_filter_counts_only_that_programmes_needs(assist: Assist) -> None:
    """Under `?programme=`, a cell's open needs are those of the programme's consultations,
    whichever way the columns go: a need from no consultation is in no programme."""
    await consultation_need(assist, "border_management")
    await assist.need(area="legislation")  # the State's own request: no programme
    state = assist.state.code
    by_programme = await cells_of(
        assist["analyst"], assist.state, by="programme", programme="countering_terrorist_travel"
    )
    assert set(by_programme) == {(state, "countering_terrorist_travel")}
    by_area = await cells_of(
        assist["analyst"], assist.state, programme="countering_terrorist_travel"
    )
    assert set(by_area) == {(state, "border_management")}


async def _member_state(database: Database, code: str) -> Organization:
    """The Member State with this code: the reference data's, or a new one."""
    async with database.sessionmaker() as session:
        found = (
            await session.exec(select(Organization).where(col(Organization.code) == code))
        ).first()
    return found or await make_org(database, code=code)


@pytest.mark.skipif(
    not REGIONAL_GROUPS.is_file(),
    reason="platform/ctcp/data/regional_groups.csv (the UN regional groups) is not there yet",
)
async def test_filters_by_regional_group(assist: Assist) -> None:
    """Kenya is in the African Group; the test's own State, with a made-up code, in none."""
    kenya = await _member_state(assist.database, "KEN")
    await create_activity(assist, "analyst", state=kenya, lead=assist.entity.code)
    await at_work(assist, "border_management", assist.entity)
    ours = (kenya, assist.state)
    kenyan = ("KEN", "border_management")
    everywhere = await cells_of(assist["analyst"], *ours)
    assert {kenyan, (assist.state.code, "border_management")} <= set(everywhere)
    african = await cells_of(assist["analyst"], *ours, region="african")
    assert kenyan in african and {state for state, _ in african} == {"KEN"}
    assert african[kenyan] == everywhere[kenyan]
    assert await cells_of(assist["analyst"], *ours, region="western_european_others") == {}


async def test_entity_summaries_count_what_each_lead_does(assist: Assist) -> None:
    programme = "salw_terrorism_nexus"
    for area, status in (
        ("legislation", "planned"),
        ("legislation", "completed"),
        ("human_rights", "ongoing"),
    ):
        await at_work(assist, area, assist.entity, status, programme=programme)
    await at_work(assist, "legislation", assist.other_entity, "cancelled", programme=programme)
    await create_activity(
        assist, "analyst", state=assist.other_state, lead=assist.entity.code, programme=programme
    )
    await at_work(assist, "legislation", assist.other_entity)  # in no programme

    response = await assist["analyst"].get(
        "/api/v1/coordination/entities", params={"programme": programme}
    )
    assert response.status_code == 200, response.text
    leads = (assist.entity.code, assist.other_entity.code)
    assert [s for s in response.json() if s["entity"] in leads] == [
        {
            "entity": assist.entity.code,
            "activities": {
                "planned": 2,
                "ongoing": 1,
                "completed": 1,
                "cancelled": 0,
                "total": 4,
            },
            "states": 2,
            "areas": 3,
        },
        {
            "entity": assist.other_entity.code,
            "activities": {
                "planned": 0,
                "ongoing": 0,
                "completed": 0,
                "cancelled": 1,
                "total": 1,
            },
            "states": 1,
            "areas": 1,
        },
    ]
    [event] = await events_of(assist.database, response)
    assert (event.action, event.outcome) == ("activity.summary", "allowed")
    assert set(leads) <= set(details_of(event)["entities"])

    # The other entity counts only the States that share with it.
    await assist.share_needs(assist.other_state)
    seen = await assist["other_entity"].get(
        "/api/v1/coordination/entities", params={"programme": programme}
    )
    assert seen.status_code == 200, seen.text
    [only] = [s for s in seen.json() if s["entity"] in leads]
    assert only["entity"] == assist.entity.code
    assert only["activities"]["total"] == 1 and only["states"] == 1
