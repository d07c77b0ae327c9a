"""Report pages: every page x every role, scope, CSRF, the analyst's forms end to end."""

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, func, select

from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from ctcp.reports.models import Attachment, Recommendation, ReportSection, VisitReport
from tests.factories import audit_events, make_org, new_client
from tests.web.conftest import Reader, reader

ROLES = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


def report_json(state: str, marker: str, **changes: Any) -> dict[str, Any]:
    return {
        "state": state,
        "title": f"Visit {marker}",
        "kind": "comprehensive",
        "visit_start": "2026-05-04",
        "visit_end": "2026-05-08",
        "language": "en",
        "sections": [
            {
                "area": "legislation",
                "title": "Legislation",
                "body": f"BODY-LEGISLATION-{marker}",
                "recommendations": [{"text": "Criminalize travel.", "priority": "high"}],
            },
            {
                "area": "human_rights",
                "title": "Human rights",
                "body": f"BODY-HUMAN-RIGHTS-{marker}",
                "recommendations": [],
            },
        ],
    } | changes


@dataclass
class World:
    state: Organization
    other_state: Organization
    readers: dict[str, Reader]
    anonymous: httpx.AsyncClient
    own_report: dict[str, Any] = field(default_factory=dict)  # adopted
    own_draft: dict[str, Any] = field(default_factory=dict)
    other_report: dict[str, Any] = field(default_factory=dict)
    attachment_id: str = ""

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The analyst through the JSON API (header CSRF), to set up data."""
        analyst = self.readers["cted_analyst"]
        headers = {"X-CSRF-Token": analyst.csrf}
        return await analyst.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def world(app: FastAPI, database: Database) -> World:
    state, other_state = await make_org(database), await make_org(database)
    readers = {}
    for role in ROLES:
        org = state if role == "state_focal_point" else None
        kind = "compact_entity" if role == "entity_focal_point" else "member_state"
        readers[role] = await reader(app, database, roles=(role,), org=org, kind=kind)
    world = World(state, other_state, readers, new_client(app))
    own = await world.api("POST", "/api/v1/reports", json=report_json(state.code, state.code))
    assert own.status_code == 201, own.text
    world.own_report = own.json()
    draft = await world.api(
        "POST", "/api/v1/reports", json=report_json(state.code, f"DRAFT-{state.code}")
    )
    world.own_draft = draft.json()
    other = await world.api(
        "POST", "/api/v1/reports", json=report_json(other_state.code, other_state.code)
    )
    world.other_report = other.json()
    uploaded = await world.api(
        "POST",
        f"/api/v1/reports/{world.own_report['id']}/attachments",
        files={"file": ("findings.pdf", PDF + state.code.encode())},
    )
    assert uploaded.status_code == 201, uploaded.text
    world.attachment_id = uploaded.json()["id"]
    # Adopted with its file: an adopted version accepts no new one.
    assert (await world.api("POST", f"/api/v1/reports/{own.json()['id']}/adopt")).status_code == 200
    return world


async def _count(database: Database, model: Any, *where: Any) -> int:
    async with database.sessionmaker() as session:
        return int(
            (await session.exec(select(func.count()).select_from(model).where(*where))).one()
        )


def _expect(table: dict[str, int], role: str) -> int:
    return table.get(role, 403)


# --- the matrix -----------------------------------------------------------------------------

READERS = {"state_focal_point": 200, "cted_analyst": 200, "consent_officer": 200}
ANALYST = {"cted_analyst": 200}


def get_pages(w: World) -> list[tuple[str, dict[str, int]]]:
    own, draft, other = w.own_report["id"], w.own_draft["id"], w.other_report["id"]
    return [
        ("/portal/reports", READERS),
        (
            f"/portal/reports?state={w.state.code}&status=adopted&kind=comprehensive&year=2026",
            READERS,
        ),
        (f"/portal/reports/{own}", READERS),
        (f"/portal/reports/{other}", READERS | {"state_focal_point": 404}),
        (
            f"/portal/reports/{uuid.uuid4()}",
            READERS | {"state_focal_point": 404} | {"cted_analyst": 404, "consent_officer": 404},
        ),
        ("/portal/reports/new", ANALYST),
        (f"/portal/reports/{draft}/edit", ANALYST),
        (f"/portal/reports/{own}/edit", {"cted_analyst": 303}),  # adopted: back to the report
        (f"/portal/reports/{draft}/adopt", ANALYST),
        (f"/portal/reports/{own}/attachments", ANALYST),
        # Not published: an entity may read publications, but none covers it.
        (f"/portal/attachments/{w.attachment_id}", READERS | {"entity_focal_point": 404}),
    ]


def post_pages(w: World) -> list[tuple[str, dict[str, int]]]:
    """Each POST with an empty (or refused) form: only the analyst gets past the guard."""
    own, draft = w.own_report["id"], w.own_draft["id"]
    return [
        ("/portal/reports/new", {"cted_analyst": 422}),
        (f"/portal/reports/{draft}/edit", {"cted_analyst": 422}),
        (f"/portal/reports/{own}/adopt", {"cted_analyst": 409}),  # already adopted
        (f"/portal/reports/{draft}/amend", {"cted_analyst": 409}),  # a draft is edited instead
        (f"/portal/reports/{own}/attachments", {"cted_analyst": 422}),  # no file
    ]


async def test_every_page_for_every_role(world: World) -> None:
    for path, table in get_pages(world):
        for role, person in world.readers.items():
            response = await person.get(path)
            assert response.status_code == _expect(table, role), (path, role, response.text[:300])
            if response.status_code >= 400:
                assert "Traceback" not in response.text and "<h1>" in response.text
        response = await world.anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/portal/sign-in?next=")
    for path, table in post_pages(world):
        for role, person in world.readers.items():
            response = await person.post(path, {})
            assert response.status_code == _expect(table, role), (path, role, response.text[:300])
        response = await world.anonymous.post(path, data={})
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/portal/sign-in")


async def test_a_state_sees_only_its_own_reports(world: World) -> None:
    state = world.readers["state_focal_point"]
    listed = await state.get("/portal/reports")
    assert world.own_report["title"] in listed.text
    assert world.other_report["title"] not in listed.text
    # The State filter is the Secretariat's: a State cannot use it to reach another State.
    filtered = await state.get(f"/portal/reports?state={world.other_state.code}")
    assert filtered.status_code == 200 and world.other_report["title"] not in filtered.text
    assert 'name="state"' not in filtered.text
    page = await state.get(f"/portal/reports/{world.other_report['id']}")
    assert page.status_code == 404 and world.other_report["title"] not in page.text
    analyst = await world.readers["cted_analyst"].get(f"/portal/reports?state={world.state.code}")
    assert world.own_report["title"] in analyst.text
    assert world.other_report["title"] not in analyst.text


async def test_the_report_page_shows_everything_and_links(world: World, database: Database) -> None:
    report = world.own_report
    page = await world.readers["state_focal_point"].get(f"/portal/reports/{report['id']}")
    assert page.status_code == 200
    for section in report["sections"]:
        assert section["title"] in page.text and section["body"] in page.text
    assert "Criminalize travel." in page.text
    assert f"/portal/attachments/{world.attachment_id}" in page.text
    assert f"/portal/reports/{report['id']}/consent" in page.text
    assert "/edit" not in page.text and "/amend" not in page.text  # no analyst buttons
    analyst_page = await world.readers["cted_analyst"].get(f"/portal/reports/{report['id']}")
    assert f"/portal/reports/{report['id']}/amend" in analyst_page.text
    # An adopted version takes no new file: no upload button (amend it).
    assert f"/portal/reports/{report['id']}/attachments" not in analyst_page.text
    draft_page = await world.readers["cted_analyst"].get(f"/portal/reports/{world.own_draft['id']}")
    assert f"/portal/reports/{world.own_draft['id']}/attachments" in draft_page.text
    assert f"/portal/reports/{world.own_draft['id']}/edit" in draft_page.text
    assert f"/portal/reports/{world.own_draft['id']}/adopt" in draft_page.text
    reads = await audit_events(database, action="report.read", object_id=report["id"])
    assert reads and reads[-1].outcome == "allowed"


async def test_every_post_without_csrf_is_refused_and_changes_nothing(
    world: World, database: Database
) -> None:
    analyst = world.readers["cted_analyst"]
    draft = world.own_draft["id"]
    before = await _count(database, VisitReport, col(VisitReport.state_id) == world.state.id)
    attachments_before = await _count(database, Attachment)
    form = _form(world.state.code, title="Never saved")
    for path in (
        "/portal/reports/new",
        f"/portal/reports/{draft}/edit",
        f"/portal/reports/{draft}/adopt",
        f"/portal/reports/{world.own_report['id']}/amend",
    ):
        response = await analyst.post_without_csrf(path, form)
        assert response.status_code == 403, path
    upload = await analyst.client.post(
        f"/portal/reports/{world.own_report['id']}/attachments",
        files={"file": ("x.pdf", PDF + b"csrf")},
    )
    assert upload.status_code == 403
    assert (
        await _count(database, VisitReport, col(VisitReport.state_id) == world.state.id) == before
    )
    assert await _count(database, Attachment) == attachments_before
    async with database.sessionmaker() as session:
        saved = await session.get(VisitReport, uuid.UUID(draft))
        assert saved is not None and saved.status == "draft" and saved.title != "Never saved"


# --- the analyst's forms ---------------------------------------------------------------


def _form(state: str, **changes: str) -> dict[str, str]:
    form = {
        "state": state,
        "title": "Portal-drafted visit",
        "kind": "focused",
        "language": "fr",
        "visit_start": "2026-09-01",
        "visit_end": "2026-09-03",
        "sections.0.area": "law_enforcement",
        "sections.0.title": "Law enforcement",
        "sections.0.body": "Police cooperation findings.\r\nSecond line.",
        "sections.0.recommendations": "high: Set up a fusion cell.\nTrain border police.",
        # Block 1 is left blank: ignored.
        "sections.2.area": "legislation",
        "sections.2.title": "Legislation",
        "sections.2.body": "Laws findings.",
        "sections.2.recommendations": "",
    }
    return form | changes


async def test_create_a_report_through_the_form(world: World, database: Database) -> None:
    analyst = world.readers["cted_analyst"]
    form_page = await analyst.get("/portal/reports/new")
    assert 'name="sections.7.body"' in form_page.text and world.state.code in form_page.text
    response = await analyst.post("/portal/reports/new", _form(world.state.code))
    assert response.status_code == 303, response.text
    report_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[-1])
    async with database.sessionmaker() as session:
        report = await session.get(VisitReport, report_id)
        assert report is not None
        assert (report.title, report.kind, report.language, report.status) == (
            "Portal-drafted visit",
            "focused",
            "fr",
            "draft",
        )
        sections = (
            await session.exec(
                select(ReportSection)
                .where(col(ReportSection.report_id) == report_id)
                .order_by(col(ReportSection.position))
            )
        ).all()
        assert [s.area for s in sections] == ["law_enforcement", "legislation"]
        assert sections[0].body == "Police cooperation findings.\nSecond line."
        recommendations = (
            await session.exec(
                select(Recommendation)
                .where(col(Recommendation.section_id) == sections[0].id)
                .order_by(col(Recommendation.position))
            )
        ).all()
        assert [(r.priority, r.text) for r in recommendations] == [
            ("high", "Set up a fusion cell."),
            ("medium", "Train border police."),
        ]
    assert await audit_events(database, action="report.create", object_id=str(report_id))
    shown = await analyst.get(response.headers["location"])
    assert "Portal-drafted visit" in shown.text and "The draft report was saved." in shown.text


async def test_bad_form_is_shown_again_with_its_errors(world: World, database: Database) -> None:
    analyst = world.readers["cted_analyst"]
    before = await _count(database, VisitReport)
    cases = [
        ({"title": ""}, "title"),
        ({"visit_end": "2026-08-01"}, "visit_end"),
        ({"sections.2.area": "law_enforcement"}, "sections.2.area"),  # the same area twice
        ({"sections.2.title": ""}, "sections.2.title"),
        ({"kind": "nonsense"}, "kind"),
        ({"visit_start": "not a date"}, "visit_start"),
    ]
    for changes, name in cases:
        response = await analyst.post("/portal/reports/new", _form(world.state.code, **changes))
        assert response.status_code == 422, (changes, response.text[:300])
        assert f'id="{name}-error"' in response.text, changes
        assert 'value="Law enforcement"' in response.text  # typed values kept
    blank = {k: v for k, v in _form(world.state.code).items() if not k.startswith("sections.")}
    response = await analyst.post("/portal/reports/new", blank)
    assert response.status_code == 422 and 'id="sections.0.area-error"' in response.text
    assert await _count(database, VisitReport) == before


async def test_edit_adopt_and_amend(world: World, database: Database) -> None:
    analyst = world.readers["cted_analyst"]
    draft = world.own_draft["id"]
    edit = await analyst.get(f"/portal/reports/{draft}/edit")
    assert "BODY-LEGISLATION-DRAFT" in edit.text and "high: Criminalize travel." in edit.text
    response = await analyst.post(
        f"/portal/reports/{draft}/edit", _form(world.state.code, title="Edited title")
    )
    assert response.status_code == 303, response.text
    async with database.sessionmaker() as session:
        saved = await session.get(VisitReport, uuid.UUID(draft))
        assert saved is not None and saved.title == "Edited title"
    assert await audit_events(database, action="report.update", object_id=draft)
    confirm = await analyst.get(f"/portal/reports/{draft}/adopt")
    assert confirm.status_code == 200 and f'action="/portal/reports/{draft}/adopt"' in confirm.text
    adopted = await analyst.post(f"/portal/reports/{draft}/adopt")
    assert adopted.status_code == 303
    async with database.sessionmaker() as session:
        saved = await session.get(VisitReport, uuid.UUID(draft))
        assert saved is not None and saved.status == "adopted" and saved.adopted_at is not None
    assert await audit_events(database, action="report.adopt", object_id=draft)
    again = await analyst.post(f"/portal/reports/{draft}/adopt")
    assert again.status_code == 409 and "Traceback" not in again.text
    assert "Only a draft can be adopted." in again.text
    amended = await analyst.post(f"/portal/reports/{draft}/amend")
    assert amended.status_code == 303
    new_id = amended.headers["location"].split("/")[-2]
    assert amended.headers["location"] == f"/portal/reports/{new_id}/edit"
    assert await audit_events(database, action="report.amend", object_id=new_id)
    # Both versions link to each other, for a reader who may read them.
    page = await world.readers["state_focal_point"].get(f"/portal/reports/{new_id}")
    assert f'href="/portal/reports/{draft}"' in page.text and "Version 2" in page.text


async def test_upload_then_download_an_attachment(
    app: FastAPI, world: World, database: Database
) -> None:
    analyst = world.readers["cted_analyst"]
    report = world.own_draft
    content = PDF + b"portal-upload" + world.state.code.encode()
    section_id = report["sections"][1]["id"]
    form_page = await analyst.get(f"/portal/reports/{report['id']}/attachments")
    assert 'enctype="multipart/form-data"' in form_page.text and section_id in form_page.text
    response = await analyst.client.post(
        f"/portal/reports/{report['id']}/attachments",
        data={"csrf_token": analyst.csrf, "section_id": section_id},
        files={"file": ("annex.pdf", content, "application/pdf")},
    )
    assert response.status_code == 303, response.text
    async with database.sessionmaker() as session:
        stored = (
            await session.exec(
                select(Attachment).where(col(Attachment.report_id) == uuid.UUID(report["id"]))
            )
        ).one()
    assert stored.filename == "annex.pdf" and str(stored.section_id) == section_id
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert await audit_events(database, action="attachment.create", object_id=str(stored.id))
    page = await world.readers["state_focal_point"].get(f"/portal/reports/{report['id']}")
    assert f"/portal/attachments/{stored.id}" in page.text
    download = await world.readers["state_focal_point"].get(f"/portal/attachments/{stored.id}")
    assert download.status_code == 200 and download.content == content
    assert "attachment" in download.headers["content-disposition"]
    reads = await audit_events(database, action="attachment.read", object_id=str(stored.id))
    assert reads and reads[-1].outcome == "allowed"
    # Refused content types are the API's 422, as an HTML page; nothing is stored.
    refused = await analyst.client.post(
        f"/portal/reports/{report['id']}/attachments",
        data={"csrf_token": analyst.csrf},
        files={"file": ("script.pdf", b"#!/bin/sh\necho hi\n")},
    )
    assert refused.status_code == 422 and "Traceback" not in refused.text
    assert await _count(database, Attachment, col(Attachment.report_id) == stored.report_id) == 1
    # Once adopted, the portal's upload is the API's 409, as a page; nothing is stored.
    adopted = await analyst.post(f"/portal/reports/{report['id']}/adopt", {})
    assert adopted.status_code == 303, adopted.text
    late = await analyst.client.post(
        f"/portal/reports/{report['id']}/attachments",
        data={"csrf_token": analyst.csrf},
        files={"file": ("late.pdf", PDF + b"late")},
    )
    assert late.status_code == 409 and "amend" in late.text
    assert await _count(database, Attachment, col(Attachment.report_id) == stored.report_id) == 1
    # Another State's focal point cannot download it.
    other = await reader(app, database, roles=("state_focal_point",), org=world.other_state)
    assert (await other.get(f"/portal/attachments/{stored.id}")).status_code == 404
