"""Visit reports: validation, scoped lists and reads, drafting, adoption, amendment."""

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.core.db import Database
from tests.factories import audit_events, make_org, make_user, new_client, sign_in


def body(state: str, **changes: Any) -> dict[str, Any]:
    report = {
        "state": state,
        "title": "Comprehensive assessment visit",
        "kind": "comprehensive",
        "visit_start": "2026-05-04",
        "visit_end": "2026-05-08",
        "language": "en",
        "sections": [
            {
                "area": "legislation",
                "title": "Legislation",
                "body": "MARKER-LEGISLATION",
                "recommendations": [{"text": "Criminalize travel.", "priority": "high"}],
            },
            {
                "area": "human_rights",
                "title": "Human rights",
                "body": "MARKER-HUMAN-RIGHTS",
                "recommendations": [],
            },
        ],
    }
    return report | changes


@pytest.fixture
async def analyst(app: FastAPI, database: Database) -> httpx.AsyncClient:
    user = await make_user(database, roles=("cted_analyst",))
    client = new_client(app)
    await sign_in(client, user.email)
    return client


async def _focal_point(app: FastAPI, database: Database, state: Any) -> httpx.AsyncClient:
    user = await make_user(database, org=state, roles=("state_focal_point",))
    client = new_client(app)
    await sign_in(client, user.email)
    return client


async def test_create_returns_the_report_with_section_ids(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database, kind="member_state")
    response = await analyst.post("/api/v1/reports", json=body(state.code))
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["status"] == "draft" and report["version"] == 1
    assert report["state"]["code"] == state.code
    assert [s["area"] for s in report["sections"]] == ["legislation", "human_rights"]
    assert all(s["id"] for s in report["sections"])
    assert report["sections"][0]["recommendations"][0]["priority"] == "high"
    # The answer is built from what was written; reading it back gives the same report.
    assert (await analyst.get(f"/api/v1/reports/{report['id']}")).json() == report
    events = await audit_events(database, object_id=report["id"])
    assert [e.action for e in events] == ["report.create", "report.read"]


@pytest.mark.parametrize(
    "change",
    [
        {"visit_end": "2026-05-01"},  # before the start
        {"sections": []},
        {
            "sections": [
                {"area": "legislation", "title": "A", "body": "x"},
                {"area": "legislation", "title": "B", "body": "y"},
            ]
        },  # duplicate area
        {"sections": [{"area": "astrology", "title": "A", "body": "x"}]},
        {"sections": [{"area": "legislation", "title": "A", "body": "   "}]},
        {"title": ""},
        {"title": "x" * 301},
        {"kind": "informal"},
        {"state": "NOWHERE"},
        {
            "sections": [
                {
                    "area": "legislation",
                    "title": "A",
                    "body": "x",
                    "recommendations": [{"text": "t", "priority": "urgent"}],
                }
            ]
        },
        {"unexpected": 1},
    ],
)
async def test_bad_reports_are_422_and_nothing_is_written(
    analyst: httpx.AsyncClient, database: Database, change: dict[str, Any]
) -> None:
    state = await make_org(database, kind="member_state")
    response = await analyst.post("/api/v1/reports", json=body(state.code) | change)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]
    listed = await analyst.get("/api/v1/reports", params={"state": state.code})
    assert listed.json()["items"] == []


async def test_a_state_sees_only_its_own_reports(
    app: FastAPI, analyst: httpx.AsyncClient, database: Database
) -> None:
    own, other = await make_org(database), await make_org(database)
    mine = (await analyst.post("/api/v1/reports", json=body(own.code))).json()
    theirs = (await analyst.post("/api/v1/reports", json=body(other.code))).json()
    focal = await _focal_point(app, database, own)
    listed = await focal.get("/api/v1/reports")
    assert {r["id"] for r in listed.json()["items"]} == {mine["id"]}
    assert (await focal.get(f"/api/v1/reports/{mine['id']}")).status_code == 200
    hidden = await focal.get(f"/api/v1/reports/{theirs['id']}")
    assert hidden.status_code == 404
    assert "MARKER" not in hidden.text and other.code not in hidden.text
    filtered = await focal.get("/api/v1/reports", params={"state": other.code})
    assert filtered.json()["items"] == []
    denial = await audit_events(database, object_id=theirs["id"], outcome="denied")
    assert denial and '"status": 404' in denial[-1].details


async def test_every_full_read_is_audited(
    app: FastAPI, analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    report = (await analyst.post("/api/v1/reports", json=body(state.code))).json()
    focal = await _focal_point(app, database, state)
    await focal.get(f"/api/v1/reports/{report['id']}")
    await focal.get(f"/api/v1/reports/{report['id']}")
    reads = await audit_events(database, object_id=report["id"], action="report.read")
    assert len(reads) == 2


async def test_list_filters_and_paginates_in_a_stable_order(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    starts = ["2024-01-10", "2025-06-01", "2025-02-01", "2026-03-03", "2026-03-03"]
    ids = []
    for start in starts:
        created = await analyst.post(
            "/api/v1/reports",
            json=body(
                state.code,
                visit_start=start,
                visit_end=start,
                kind="focused" if start.startswith("2025") else "comprehensive",
            ),
        )
        ids.append(created.json()["id"])
    await analyst.post(f"/api/v1/reports/{ids[0]}/adopt")
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"state": state.code, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await analyst.get("/api/v1/reports", params=params)).json()
        seen += [(r["visit_start"], r["id"]) for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5
    by_year = await analyst.get("/api/v1/reports", params={"state": state.code, "year": 2025})
    assert len(by_year.json()["items"]) == 2
    focused = await analyst.get("/api/v1/reports", params={"state": state.code, "kind": "focused"})
    assert len(focused.json()["items"]) == 2
    adopted = await analyst.get(
        "/api/v1/reports", params={"state": state.code, "status": "adopted"}
    )
    assert [r["id"] for r in adopted.json()["items"]] == [ids[0]]


async def test_draft_is_editable_adopted_is_not(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    report = (await analyst.post("/api/v1/reports", json=body(state.code))).json()
    content = {k: v for k, v in body(state.code, title="Revised title").items() if k != "state"}
    content["sections"] = [
        {
            "area": "law_enforcement",
            "title": "Police",
            "body": "Revised body",
            "recommendations": [{"text": "Train", "priority": "low"}],
        }
    ]
    edited = await analyst.put(f"/api/v1/reports/{report['id']}", json=content)
    assert edited.status_code == 200
    assert edited.json()["title"] == "Revised title"
    assert [s["area"] for s in edited.json()["sections"]] == ["law_enforcement"]
    assert edited.json()["sections"][0]["recommendations"][0]["text"] == "Train"
    assert (await analyst.get(f"/api/v1/reports/{report['id']}")).json() == edited.json()
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 409
    assert (await analyst.put(f"/api/v1/reports/{report['id']}", json=content)).status_code == 409


async def test_amending_adds_a_version_and_leaves_the_adopted_one_as_it_was(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    first = (await analyst.post("/api/v1/reports", json=body(state.code))).json()
    assert (await analyst.post(f"/api/v1/reports/{first['id']}/amend")).status_code == 409
    await analyst.post(f"/api/v1/reports/{first['id']}/adopt")
    amended = await analyst.post(f"/api/v1/reports/{first['id']}/amend")
    assert amended.status_code == 201
    second = amended.json()
    assert (second["version"], second["status"], second["lineage_id"]) == (
        2,
        "draft",
        first["lineage_id"],
    )
    assert {s["id"] for s in second["sections"]}.isdisjoint({s["id"] for s in first["sections"]})
    content = {k: v for k, v in body(state.code, title="Version two").items() if k != "state"}
    await analyst.put(f"/api/v1/reports/{second['id']}", json=content)
    old = (await analyst.get(f"/api/v1/reports/{first['id']}")).json()
    assert old["title"] == first["title"] and old["status"] == "adopted"
    assert [s["body"] for s in old["sections"]] == [s["body"] for s in first["sections"]]
    assert (await analyst.post(f"/api/v1/reports/{first['id']}/amend")).status_code == 409


async def test_lineage_lists_the_versions_of_one_report_in_scope(
    analyst: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    first = (await analyst.post("/api/v1/reports", json=body(state.code))).json()
    await analyst.post(f"/api/v1/reports/{first['id']}/adopt")
    second = (await analyst.post(f"/api/v1/reports/{first['id']}/amend")).json()
    unrelated = (await analyst.post("/api/v1/reports", json=body(state.code))).json()
    listed = await analyst.get("/api/v1/reports", params={"lineage": first["lineage_id"]})
    assert listed.status_code == 200
    assert {r["id"] for r in listed.json()["items"]} == {first["id"], second["id"]}
    assert unrelated["id"] not in listed.text
    other = await _focal_point(app, database, await make_org(database))
    outside = await other.get("/api/v1/reports", params={"lineage": first["lineage_id"]})
    assert outside.status_code == 200 and outside.json()["items"] == []
    assert (await analyst.get("/api/v1/reports", params={"lineage": "nope"})).status_code == 422


async def test_a_report_lists_its_attachments(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    report = (await analyst.post("/api/v1/reports", json=body(state.code))).json()
    assert report["attachments"] == []
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 4 + state.code.encode()
    uploaded = await analyst.post(
        f"/api/v1/reports/{report['id']}/attachments",
        files={"file": ("annex.pdf", pdf)},
        data={"section_id": report["sections"][0]["id"]},
    )
    assert uploaded.status_code == 201, uploaded.text
    read = (await analyst.get(f"/api/v1/reports/{report['id']}")).json()
    assert read["attachments"] == [uploaded.json()]


async def test_amending_copies_sections_recommendations_and_attachments(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    content = body(state.code)
    content["sections"][0]["recommendations"].append({"text": "Train judges.", "priority": "low"})
    first = (await analyst.post("/api/v1/reports", json=content)).json()
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 4 + state.code.encode()
    for section in (first["sections"][0]["id"], None):
        data = {"section_id": section} if section else {}
        files = {"file": ("annex.pdf", pdf)}
        posted = await analyst.post(
            f"/api/v1/reports/{first['id']}/attachments", files=files, data=data
        )
        assert posted.status_code == 201, posted.text
    first = (await analyst.post(f"/api/v1/reports/{first['id']}/adopt")).json()
    second = (await analyst.post(f"/api/v1/reports/{first['id']}/amend")).json()

    def content_of(report: dict[str, Any]) -> list[Any]:
        return [
            (
                s["area"],
                s["title"],
                s["body"],
                [(r["text"], r["priority"]) for r in s["recommendations"]],
            )
            for s in report["sections"]
        ]

    assert content_of(second) == content_of(first)
    copied = {
        old["id"]: new["id"] for old, new in zip(first["sections"], second["sections"], strict=True)
    }
    ids = [r["id"] for s in first["sections"] + second["sections"] for r in s["recommendations"]]
    assert len(set(ids)) == len(ids) == 4
    assert {
        (copied.get(a["section_id"]), a["filename"], a["sha256"], a["size"])
        for a in first["attachments"]
    } == {(a["section_id"], a["filename"], a["sha256"], a["size"]) for a in second["attachments"]}
    assert len(second["attachments"]) == 2
    assert {a["id"] for a in second["attachments"]}.isdisjoint(
        a["id"] for a in first["attachments"]
    )
    assert (await analyst.get(f"/api/v1/reports/{second['id']}")).json() == second
    amended = await audit_events(database, action="report.amend", object_id=second["id"])
    assert [json.loads(e.details) for e in amended] == [{"from": first["id"], "version": 2}]
