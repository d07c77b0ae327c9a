"""Matching suggestions; capacity consultations, plans, indicators and their progress."""

from typing import Any

from tests.assistance.conftest import Assist, signed_in
from tests.factories import audit_events, bearer_http, make_api_client, make_org


async def test_suggestions_rank_entities_that_offered_on_the_same_area(assist: Assist) -> None:
    await assist.share_needs()
    area = "countering_violent_extremism"
    # The other entity offered twice on this area, never accepted; the entity once, accepted.
    for _ in range(2):
        request = await assist.circulated(await assist.need(area=area))
        assert (
            await assist.offer(request["id"], who="other_entity", programme="PVE")
        ).status_code == 201
    request = await assist.circulated(await assist.need(area=area))
    chosen = (await assist.offer(request["id"], programme="CVE Youth")).json()
    await assist["state"].post(f"/api/v1/offers/{chosen['id']}/accept")
    unrelated = await assist.circulated(await assist.need(area="critical_infrastructure"))
    await assist.offer(unrelated["id"], programme="Vulnerable Targets")
    need = await assist.need(area=area)
    response = await assist["analyst"].get(f"/api/v1/needs/{need['id']}/suggestions")
    assert response.status_code == 200, response.text
    mine = [
        s
        for s in response.json()
        if s["organization"]["code"] in (assist.entity.code, assist.other_entity.code)
    ]
    assert [
        (s["organization"]["code"], s["programme"], s["offers"], s["accepted"]) for s in mine
    ] == [
        (assist.entity.code, "CVE Youth", 1, 1),
        (assist.other_entity.code, "PVE", 2, 0),
    ]
    # The accepted offer became a planned activity: the entity is at work in that State and
    # area, so it comes first, and says so before its record of offers.
    assert mine[0]["active_activities"] == 1
    assert mine[0]["reason"].startswith(f"Already at work in {assist.state.code} on {area}")
    assert f"1 offer on {area} needs, 1 accepted" in mine[0]["reason"]
    assert all(s["programme"] != "Vulnerable Targets" for s in response.json())
    for who in ("state", "entity", "officer"):
        assert (await assist[who].get(f"/api/v1/needs/{need['id']}/suggestions")).status_code == 403
    missing = "/api/v1/needs/00000000-0000-4000-8000-000000000000/suggestions"
    assert (await assist["analyst"].get(missing)).status_code == 404
    assert await audit_events(assist.database, action="need.suggestions", object_id=need["id"])


def _consultation(assist: Assist, entity_codes: list[str]) -> dict[str, Any]:
    return {
        "state": assist.state.code,
        "programme": "countering_terrorist_travel",
        "start_date": "2026-05-04",
        "end_date": "2026-05-06",
        "participants": [{"name": "Ministry of Interior", "organization": "MOI"}],
        "baseline_findings": "BASELINE-CONFIDENTIAL: no API system in place.",
        "measures": [
            {
                "title": f"Measure {index}",
                "recommendations": "Tailored recommendation.",
                "entity": code,
                "indicators": [
                    {
                        "name": "Border posts connected",
                        "unit": "posts",
                        "baseline": 0,
                        "target": 12,
                        "due_date": "2027-12-31",
                    }
                ],
            }
            for index, code in enumerate(entity_codes)
        ],
    }


async def test_consultation_plan_visibility_and_progress_history(assist: Assist) -> None:
    created = await assist["analyst"].post(
        "/api/v1/consultations",
        json=_consultation(assist, [assist.entity.code, assist.other_entity.code]),
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    path = f"/api/v1/consultations/{plan['id']}"
    assert [m["entity"]["code"] for m in plan["measures"]] == [
        assist.entity.code,
        assist.other_entity.code,
    ]
    full = (await assist["state"].get(path)).json()
    assert full["baseline_findings"].startswith("BASELINE") and len(full["measures"]) == 2
    assert (await assist["other_state"].get(path)).status_code == 404
    entity_view = await assist["entity"].get(path)
    assert entity_view.status_code == 200
    assert (
        entity_view.json()["baseline_findings"] is None
        and entity_view.json()["participants"] is None
    )
    assert [m["entity"]["code"] for m in entity_view.json()["measures"]] == [assist.entity.code]
    assert "BASELINE" not in entity_view.text
    outsider = await make_org(assist.database, kind="compact_entity")
    other = await signed_in(assist.app, assist.database, "entity_focal_point", outsider)
    try:
        assert (await other.get(path)).status_code == 404
        listed = await other.get("/api/v1/consultations", params={"limit": 200})
        assert plan["id"] not in {c["id"] for c in listed.json()["items"]}
    finally:
        await other.aclose()
    mine = plan["measures"][0]["indicators"][0]["id"]
    theirs = plan["measures"][1]["indicators"][0]["id"]
    progress = await assist["entity"].post(
        f"/api/v1/indicators/{mine}/progress", json={"value": 3, "note": "Three posts live."}
    )
    assert progress.status_code == 201, progress.text
    await assist["analyst"].post(f"/api/v1/indicators/{mine}/progress", json={"value": 5})
    assert (
        await assist["entity"].post(f"/api/v1/indicators/{theirs}/progress", json={"value": 1})
    ).status_code == 404
    assert (
        await assist["state"].post(f"/api/v1/indicators/{mine}/progress", json={"value": 1})
    ).status_code == 403
    indicator = (await assist["state"].get(path)).json()["measures"][0]["indicators"][0]
    assert indicator["current"] == 5
    assert [(h["previous"], h["value"], h["by_organization"]) for h in indicator["history"]] == [
        (0, 3, assist.entity.code),
        (3, 5, (await assist["analyst"].get("/api/v1/me")).json()["organization"]["code"]),
    ]
    events = await audit_events(assist.database, action="consultation.progress", object_id=mine)
    assert sorted(e.outcome for e in events) == ["allowed", "allowed", "denied"]


async def test_consultation_writes_are_validated_and_for_analysts_only(assist: Assist) -> None:
    body = _consultation(assist, [assist.entity.code])
    for who in ("state", "entity", "officer", "admin"):
        assert (await assist[who].post("/api/v1/consultations", json=body)).status_code == 403, who
    bad = [
        body | {"programme": "unknown"},
        body | {"end_date": "2026-05-01"},
        _consultation(assist, [assist.other_state.code]),  # a State is no entity in charge
        body | {"state": assist.entity.code},
    ]
    for payload in bad:
        response = await assist["analyst"].post("/api/v1/consultations", json=payload)
        assert response.status_code == 422, response.text
    plan = (await assist["analyst"].post("/api/v1/consultations", json=body)).json()
    added = await assist["analyst"].post(
        f"/api/v1/consultations/{plan['id']}/measures",
        json={"title": "Fusion cell", "recommendations": "R.", "entity": assist.other_entity.code},
    )
    assert added.status_code == 201 and added.json()["position"] == 1
    listed = await assist["other_entity"].get(
        "/api/v1/consultations", params={"programme": "countering_terrorist_travel", "limit": 200}
    )
    assert plan["id"] in {c["id"] for c in listed.json()["items"]}
    need = await assist.need(
        source="consultation", consultation_id=plan["id"], area="border_management"
    )
    assert need["consultation_id"] == plan["id"]
    wrong_state = await assist["analyst"].post(
        "/api/v1/needs",
        json={
            "state": assist.other_state.code,
            "area": "border_management",
            "description": "D",
            "priority": "low",
            "source": "consultation",
            "consultation_id": plan["id"],
        },
    )
    assert wrong_state.status_code == 422


async def test_api_clients_never_reach_consultations(assist: Assist) -> None:
    client = await bearer_http(
        assist.app,
        await make_api_client(
            assist.database,
            org=assist.entity,
            scopes=("publications:read", "needs:read", "requests:read", "offers:write"),
        ),
    )
    async with client:
        assert (await client.get("/api/v1/consultations")).status_code == 403
