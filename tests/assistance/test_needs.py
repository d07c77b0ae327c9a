"""Needs: recording them, and who sees them as States share and stop sharing."""

from datetime import timedelta
from typing import Any

from ctcp.core.clock import clock
from tests.assistance.conftest import Assist
from tests.factories import audit_events, bearer_http, decide, make_api_client


async def _visible(assist: Assist, who: str, need_id: str) -> bool:
    """Whether `who` sees the need, checked on the detail and the list; both must agree."""
    detail = await assist[who].get(f"/api/v1/needs/{need_id}")
    assert detail.status_code in (200, 404), detail.text
    listed = await assist[who].get("/api/v1/needs", params={"limit": 200})
    assert listed.status_code == 200, listed.text
    in_list = need_id in {n["id"] for n in listed.json()["items"]}
    assert in_list == (detail.status_code == 200), (who, detail.status_code, in_list)
    return in_list


async def _from_recommendation(assist: Assist) -> tuple[dict[str, Any], dict[str, Any]]:
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
    return report, created.json()


async def test_need_from_a_recommendation_links_to_it_and_takes_its_area(assist: Assist) -> None:
    report, need = await _from_recommendation(assist)
    assert need["area"] == "border_management"
    assert need["report_id"] == report["id"] and need["source"] == "recommendation"
    assert need["status"] == "open" and need["state"]["code"] == assist.state.code
    events = await audit_events(assist.database, action="need.create", object_id=need["id"])
    assert len(events) == 1 and assist.state.code in events[0].details


async def test_bad_need_sources_are_refused(assist: Assist) -> None:
    report = await assist.adopted_report()
    other_report = await assist.adopted_report(assist.other_state)
    recommendation = report["sections"][0]["recommendations"][0]["id"]
    base = {"state": assist.state.code, "description": "D.", "priority": "low"}
    cases = [
        # The recommendation belongs to another State's report.
        base
        | {
            "source": "recommendation",
            "recommendation_id": other_report["sections"][0]["recommendations"][0]["id"],
        },
        # The area contradicts the recommendation's section.
        base
        | {"source": "recommendation", "recommendation_id": recommendation, "area": "legislation"},
        base | {"source": "recommendation"},  # no recommendation named
        base
        | {"source": "state_request", "recommendation_id": recommendation, "area": "legislation"},
        base | {"source": "state_request"},  # no area
        base | {"source": "consultation", "area": "legislation"},  # no consultation named
        base | {"source": "state_request", "area": "legislation", "state": "ZZZUNKNOWN"},
        base | {"source": "state_request", "area": "legislation", "priority": "urgent"},
    ]
    for body in cases:
        response = await assist["analyst"].post("/api/v1/needs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_draft_reports_recommendation_is_no_source(assist: Assist) -> None:
    draft = await assist["analyst"].post(
        "/api/v1/reports",
        json={
            "state": assist.state.code,
            "title": "Draft",
            "kind": "focused",
            "visit_start": "2026-02-02",
            "visit_end": "2026-02-03",
            "sections": [
                {
                    "area": "legislation",
                    "title": "L",
                    "body": "B",
                    "recommendations": [{"text": "R", "priority": "low"}],
                }
            ],
        },
    )
    recommendation = draft.json()["sections"][0]["recommendations"][0]["id"]
    response = await assist["analyst"].post(
        "/api/v1/needs",
        json={
            "state": assist.state.code,
            "description": "D.",
            "priority": "low",
            "source": "recommendation",
            "recommendation_id": recommendation,
        },
    )
    assert response.status_code == 422
    assert "adopted" in response.json()["detail"]


async def test_only_analysts_record_needs(assist: Assist) -> None:
    body = {
        "state": assist.state.code,
        "area": "legislation",
        "description": "D.",
        "priority": "low",
        "source": "state_request",
    }
    for who in ("state", "entity", "officer", "admin", "auditor"):
        assert (await assist[who].post("/api/v1/needs", json=body)).status_code == 403, who
    assert (await assist["anonymous"].post("/api/v1/needs", json=body)).status_code == 401


async def test_report_needs_follow_the_reports_consent_and_its_withdrawal(assist: Assist) -> None:
    report, need = await _from_recommendation(assist)
    for who in ("state", "analyst", "officer"):
        assert await _visible(assist, who, need["id"]), who
    for who in ("other_state", "entity"):
        assert not await _visible(assist, who, need["id"]), who
    consent_path = f"/api/v1/reports/{report['id']}/consent"
    # Consent to publish without sharing needs: still hidden from the Compact.
    full = {"scope": "full", "audience": "compact", "reference": "NV/1"}
    assert (await decide(assist["officer"], consent_path, full)).status_code == 201
    assert not await _visible(assist, "entity", need["id"])
    shared = full | {"share_needs": True}
    assert (await decide(assist["officer"], consent_path, shared)).status_code == 201
    assert await _visible(assist, "entity", need["id"])
    assert not await _visible(assist, "other_state", need["id"]), "States never see others' needs"
    # The State narrows: same sections, needs no longer shared.
    narrowed = await decide(assist["state"], consent_path, full)
    assert narrowed.status_code == 201, narrowed.text
    assert not await _visible(assist, "entity", need["id"])
    assert (await decide(assist["officer"], consent_path, shared)).status_code == 201
    assert await _visible(assist, "entity", need["id"])
    withdrawn = await assist["state"].post(f"{consent_path}/withdraw", json={"reason": "Cabinet"})
    assert withdrawn.status_code == 201
    assert not await _visible(assist, "entity", need["id"])
    denials = await audit_events(assist.database, action="need.read", outcome="denied")
    assert any(need["id"] == event.object_id for event in denials)


async def test_report_needs_hide_when_the_consent_expires(assist: Assist) -> None:
    report, need = await _from_recommendation(assist)
    expires = (clock.now() + timedelta(minutes=10)).isoformat()
    shared = {
        "scope": "full",
        "audience": "compact",
        "reference": "NV/1",
        "share_needs": True,
        "expires_at": expires,
    }
    consent = await decide(assist["officer"], f"/api/v1/reports/{report['id']}/consent", shared)
    assert consent.status_code == 201, consent.text
    assert await _visible(assist, "entity", need["id"])
    clock.advance(timedelta(minutes=11))
    assert not await _visible(assist, "entity", need["id"])


async def test_needs_without_a_report_follow_the_states_needs_sharing_consent(
    assist: Assist,
) -> None:
    need = await assist.need()
    path = f"/api/v1/states/{assist.state.code}/needs-consent"
    assert not await _visible(assist, "entity", need["id"])
    # The State cannot start sharing on its own: that is broadening.
    by_state = await assist["state"].post(path, json={"share_needs": True, "reference": "NV/9"})
    assert by_state.status_code == 403
    no_reference = await assist["officer"].post(path, json={"share_needs": True})
    assert no_reference.status_code == 422
    await assist.share_needs()
    assert await _visible(assist, "entity", need["id"])
    assert await _visible(assist, "other_entity", need["id"])
    assert not await _visible(assist, "other_state", need["id"])
    state_view = await assist["state"].get(path)
    assert state_view.status_code == 200
    assert state_view.json()["current"]["share_needs"] is True
    assert (await assist["other_state"].get(path)).status_code == 404
    assert (await assist["entity"].get(path)).status_code == 403
    # The State narrows (stops sharing): hidden at once.
    stopped = await assist["state"].post(path, json={"share_needs": False})
    assert stopped.status_code == 201, stopped.text
    assert not await _visible(assist, "entity", need["id"])
    await assist.share_needs()
    withdrawn = await assist["state"].post(f"{path}/withdraw", json={"reason": "Elections"})
    assert withdrawn.status_code == 201
    assert not await _visible(assist, "entity", need["id"])
    history = (await assist["officer"].get(path)).json()["history"]
    assert [(e["share_needs"], e["withdrawal"]) for e in history] == [
        (True, False),
        (False, False),
        (True, False),
        (False, True),
    ]
    assert (
        await assist["other_state"].post(f"{path}/withdraw", json={"reason": "x"})
    ).status_code == 404
    recorded = await audit_events(
        assist.database, action="needs_sharing.record", object_id=str(assist.state.id)
    )
    assert len(recorded) == 3


async def test_api_clients_see_shared_needs_only_with_the_needs_scope(assist: Assist) -> None:
    need = await assist.need()
    await assist.share_needs()
    reader = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("needs:read",)),
    )
    other = await bearer_http(
        assist.app,
        await make_api_client(assist.database, org=assist.entity, scopes=("publications:read",)),
    )
    try:
        assert (await reader.get(f"/api/v1/needs/{need['id']}")).status_code == 200
        refused = await other.get(f"/api/v1/needs/{need['id']}")
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
        withdraw = f"/api/v1/states/{assist.state.code}/needs-consent/withdraw"
        assert (await assist["state"].post(withdraw, json={"reason": "x"})).status_code == 201
        assert (await reader.get(f"/api/v1/needs/{need['id']}")).status_code == 404
    finally:
        await reader.aclose()
        await other.aclose()


async def test_list_filters_and_paginates(assist: Assist) -> None:
    for area in ("legislation", "legislation", "human_rights"):
        await assist.need(area=area)
    listed = await assist["state"].get(
        "/api/v1/needs", params={"state": assist.state.code, "area": "legislation", "limit": 1}
    )
    assert listed.status_code == 200
    first = listed.json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = await assist["state"].get(
        "/api/v1/needs",
        params={"area": "legislation", "limit": 1, "cursor": first["next_cursor"]},
    )
    assert len(second.json()["items"]) == 1
    assert second.json()["items"][0]["id"] != first["items"][0]["id"]
    assert (
        await assist["state"].get("/api/v1/needs", params={"area": "nowhere"})
    ).status_code == 422
    bad_cursor = await assist["state"].get("/api/v1/needs", params={"cursor": "%%%"})
    assert bad_cursor.status_code == 422


async def test_analysts_update_needs_with_an_audited_before_and_after(assist: Assist) -> None:
    need = await assist.need()
    path = f"/api/v1/needs/{need['id']}"
    updated = await assist["analyst"].patch(
        path, json={"status": "partially_met", "priority": "low"}
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["status"], updated.json()["priority"]) == ("partially_met", "low")
    events = await audit_events(assist.database, action="need.update", object_id=need["id"])
    assert (
        '"before": "open"' in events[-1].details
        and '"after": "partially_met"' in events[-1].details
    )
    assert (await assist["state"].patch(path, json={"status": "met"})).status_code == 403
    assert (await assist["analyst"].patch(path, json={"status": "done"})).status_code == 422
    missing = "/api/v1/needs/00000000-0000-4000-8000-000000000000"
    assert (await assist["analyst"].patch(missing, json={"status": "met"})).status_code == 404


async def test_partial_consent_shares_the_needs_of_consented_sections_only(assist: Assist) -> None:
    report, need = await _from_recommendation(assist)  # from the border_management section
    sections = {s["area"]: s["id"] for s in report["sections"]}
    path = f"/api/v1/reports/{report['id']}/consent"
    other = {
        "scope": "partial",
        "sections": [sections["counter_financing"]],
        "share_needs": True,
        "reference": "NV/1",
    }
    assert (await decide(assist["officer"], path, other)).status_code == 201
    assert not await _visible(assist, "entity", need["id"])
    own = other | {"sections": [sections["border_management"]]}
    assert (await decide(assist["officer"], path, own)).status_code == 201
    assert await _visible(assist, "entity", need["id"])


async def test_a_state_cannot_lengthen_sharing_by_moving_or_dropping_the_expiry(
    assist: Assist,
) -> None:
    path = f"/api/v1/states/{assist.state.code}/needs-consent"
    soon = (clock.now() + timedelta(days=1)).isoformat()
    later = (clock.now() + timedelta(days=30)).isoformat()
    shared = {"share_needs": True, "reference": "NV/2", "expires_at": soon}
    assert (await decide(assist["officer"], path, shared)).status_code == 201
    for longer in ({"share_needs": True}, {"share_needs": True, "expires_at": later}):
        refused = await assist["state"].post(path, json=longer)
        assert refused.status_code == 403, (longer, refused.text)
    sooner = {"share_needs": True, "expires_at": (clock.now() + timedelta(hours=1)).isoformat()}
    assert (await assist["state"].post(path, json=sooner)).status_code == 201
    naive = await assist["officer"].post(
        path, json={"share_needs": True, "reference": "NV/3", "expires_at": "2099-01-01T00:00:00"}
    )
    assert naive.status_code == 422
    report, _ = await _from_recommendation(assist)
    consent = f"/api/v1/reports/{report['id']}/consent"
    decision = {"scope": "full", "reference": "NV/4", "expires_at": soon}
    assert (await decide(assist["officer"], consent, decision)).status_code == 201
    dropped = await decide(assist["state"], consent, {"scope": "full"})
    assert dropped.status_code == 403


async def test_a_decision_made_on_a_stale_view_cannot_undo_a_withdrawal(assist: Assist) -> None:
    path = f"/api/v1/states/{assist.state.code}/needs-consent"
    share = {"share_needs": True, "reference": "NV/7", "after_sequence": 0}
    assert (await decide(assist["officer"], path, share)).status_code == 201
    seen = (await assist["officer"].get(path)).json()["current"]["sequence"]
    # The State withdraws while the officer's form, read at `seen`, is still open.
    assert (await assist["state"].post(f"{path}/withdraw", json={"reason": "x"})).status_code == 201
    stale = await assist["officer"].post(path, json=share | {"after_sequence": seen})
    assert stale.status_code == 409 and stale.json()["current_sequence"] == seen + 1
    assert (await assist["officer"].get(path)).json()["current"]["withdrawal"] is True
    report, _ = await _from_recommendation(assist)
    consent = f"/api/v1/reports/{report['id']}/consent"
    decision = {"scope": "full", "reference": "NV/8", "share_needs": True, "after_sequence": 0}
    assert (await decide(assist["officer"], consent, decision)).status_code == 201
    assert (
        await assist["state"].post(f"{consent}/withdraw", json={"reason": "x"})
    ).status_code == 201
    again = await decide(assist["officer"], consent, decision | {"after_sequence": 1})
    assert again.status_code == 409
    current = (await assist["officer"].get(consent)).json()["current"]
    assert current["withdrawal"] is True
    fresh = await decide(assist["officer"], consent, decision | {"after_sequence": 2})
    assert fresh.status_code == 201, fresh.text
