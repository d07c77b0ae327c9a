"""Consent and publication pages: roles, scope, CSRF, preview == publication, withdrawal."""

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, func, select

from ctcp.audit.service import AuditContext
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.consent import service
from ctcp.consent.models import ConsentEvent, Publication
from ctcp.consent.schemas import ConsentDecision
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
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
AREAS = ("legislation", "human_rights", "law_enforcement")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


def body_of(state: str, area: str) -> str:
    return f"SECRET-{state}-{area.upper()}-BODY"


@dataclass
class World:
    state: Organization
    other_state: Organization
    readers: dict[str, Reader]
    other_state_reader: Reader
    anonymous: httpx.AsyncClient
    report: dict[str, Any]
    other_report: dict[str, Any]
    draft: dict[str, Any]
    publication_id: str
    section_attachment: str  # of the published section
    hidden_attachment: str  # of an unconsented section

    async def api(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        person = self.readers[role]
        headers = {"X-CSRF-Token": person.csrf}
        return await person.client.request(method, path, headers=headers, **kwargs)

    def section(self, area: str) -> str:
        return str(next(s["id"] for s in self.report["sections"] if s["area"] == area))


async def _report(w_api: Any, state: str, *, adopt: bool = True) -> dict[str, Any]:
    created = await w_api(
        "cted_analyst",
        "POST",
        "/api/v1/reports",
        json={
            "state": state,
            "title": f"Assessment of {state}",
            "kind": "comprehensive",
            "visit_start": "2026-02-02",
            "visit_end": "2026-02-05",
            "sections": [
                {"area": a, "title": f"Title {a}", "body": body_of(state, a)} for a in AREAS
            ],
        },
    )
    assert created.status_code == 201, created.text
    report: dict[str, Any] = created.json()
    if adopt:
        adopted = await w_api("cted_analyst", "POST", f"/api/v1/reports/{report['id']}/adopt")
        assert adopted.status_code == 200
    return report


@pytest.fixture
async def world(app: FastAPI, database: Database) -> World:
    state, other_state = await make_org(database), await make_org(database)
    readers = {}
    for role in ROLES:
        org = state if role == "state_focal_point" else None
        kind = "compact_entity" if role == "entity_focal_point" else "member_state"
        readers[role] = await reader(app, database, roles=(role,), org=org, kind=kind)
    other = await reader(app, database, roles=("state_focal_point",), org=other_state)
    w = World(state, other_state, readers, other, new_client(app), {}, {}, {}, "", "", "")
    w.report = await _report(w.api, state.code, adopt=False)  # adopted once its files are on
    w.other_report = await _report(w.api, other_state.code)
    w.draft = await _report(w.api, state.code, adopt=False)
    for area, name in (
        ("legislation", "section_attachment"),
        ("human_rights", "hidden_attachment"),
    ):
        uploaded = await w.api(
            "cted_analyst",
            "POST",
            f"/api/v1/reports/{w.report['id']}/attachments",
            files={"file": (f"{area}.pdf", PDF + f"{state.code}-{area}".encode())},
            data={"section_id": w.section(area)},
        )
        assert uploaded.status_code == 201, uploaded.text
        setattr(w, name, uploaded.json()["id"])
    adopted = await w.api("cted_analyst", "POST", f"/api/v1/reports/{w.report['id']}/adopt")
    assert adopted.status_code == 200
    consent = await w.api(
        "consent_officer",
        "POST",
        f"/api/v1/reports/{w.report['id']}/consent",
        json={
            "scope": "partial",
            "sections": [w.section("legislation")],
            "audience": "compact",
            "reference": "NV/2026/1",
            "after_sequence": 0,
        },
    )
    assert consent.status_code == 201, consent.text
    listed = await w.api(
        "cted_analyst", "GET", "/api/v1/publications", params={"state": state.code}
    )
    w.publication_id = listed.json()["items"][0]["id"]
    return w


async def _events(database: Database, report_id: str) -> int:
    async with database.sessionmaker() as session:
        statement = (
            select(func.count())
            .select_from(ConsentEvent)
            .where(col(ConsentEvent.report_id) == uuid.UUID(report_id))
        )
        return int((await session.exec(statement)).one())


def _decision(**changes: Any) -> dict[str, Any]:
    return {
        "scope": "full",
        "audience": "compact",
        "reference": "NV/2026/99",
        "expires_on": "",
        "after_sequence": "1",
    } | changes


# --- the matrix -----------------------------------------------------------------------------

CONSENT_READERS = {"state_focal_point": 200, "cted_analyst": 200, "consent_officer": 200}
NARROWERS = {"state_focal_point": 200, "consent_officer": 200}
PUBLICATION_READERS = CONSENT_READERS | {"entity_focal_point": 200}


def get_pages(w: World) -> list[tuple[str, dict[str, int]]]:
    report, other = w.report["id"], w.other_report["id"]
    return [
        (f"/portal/reports/{report}/consent", CONSENT_READERS),
        (f"/portal/reports/{other}/consent", CONSENT_READERS | {"state_focal_point": 404}),
        (f"/portal/reports/{w.draft['id']}/consent", CONSENT_READERS),
        (f"/portal/reports/{report}/consent/withdraw", NARROWERS),
        (f"/portal/reports/{other}/consent/withdraw", NARROWERS | {"state_focal_point": 404}),
        ("/portal/publications", PUBLICATION_READERS),
        (
            f"/portal/publications?state={w.state.code}&area=legislation&year=2026",
            PUBLICATION_READERS,
        ),
        (f"/portal/publications/{w.publication_id}", PUBLICATION_READERS),
        (f"/portal/publications/{uuid.uuid4()}", {r: 404 for r in PUBLICATION_READERS}),
        (f"/portal/attachments/{w.section_attachment}", PUBLICATION_READERS),
        (
            f"/portal/attachments/{w.hidden_attachment}",
            PUBLICATION_READERS | {"entity_focal_point": 404},
        ),
    ]


def post_pages(w: World) -> list[tuple[str, dict[str, Any], dict[str, int]]]:
    """POSTs that change nothing even when allowed (a form error or a refused decision)."""
    report, other = w.report["id"], w.other_report["id"]
    empty_partial = _decision(scope="partial")  # no section: 422 before anything is read
    return [
        (
            f"/portal/reports/{report}/consent/preview",
            empty_partial,
            {"state_focal_point": 422, "consent_officer": 422},
        ),
        (
            f"/portal/reports/{report}/consent",
            empty_partial,
            {"state_focal_point": 422, "consent_officer": 422},
        ),
        (
            f"/portal/reports/{report}/consent/withdraw",
            {"reason": ""},
            {"state_focal_point": 422, "consent_officer": 422},
        ),
        (
            f"/portal/reports/{other}/consent",
            _decision(scope="none"),
            {"state_focal_point": 404, "consent_officer": 409},
        ),  # stale: the other report has no decision yet
    ]


async def test_every_page_for_every_role(world: World, database: Database) -> None:
    for path, table in get_pages(world):
        for role, person in world.readers.items():
            response = await person.get(path)
            assert response.status_code == table.get(role, 403), (path, role)
            if response.status_code >= 400:
                assert "Traceback" not in response.text
        response = await world.anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/portal/sign-in?next=")
    before = await _events(database, world.report["id"])
    for path, form, table in post_pages(world):
        for role, person in world.readers.items():
            response = await person.post(path, form)
            assert response.status_code == table.get(role, 403), (path, role, response.text[:200])
        response = await world.anonymous.post(path, data=form)
        assert response.status_code == 303, path
    assert await _events(database, world.report["id"]) == before


async def test_unconsented_text_never_reaches_an_entity(world: World) -> None:
    entity = world.readers["entity_focal_point"]
    texts = [
        (await entity.get("/portal/publications")).text,
        (await entity.get(f"/portal/publications?state={world.state.code}")).text,
        (await entity.get(f"/portal/publications/{world.publication_id}")).text,
    ]
    seen = "\n".join(texts)
    assert body_of(world.state.code, "legislation") in seen
    for area in ("human_rights", "law_enforcement"):
        assert body_of(world.state.code, area) not in seen
        assert f"Title {area}" not in seen
    assert f"/portal/attachments/{world.section_attachment}" in seen
    assert f"/portal/attachments/{world.hidden_attachment}" not in seen
    # An area no consented section has filters the publication out.
    by_area = await entity.get(f"/portal/publications?state={world.state.code}&area=human_rights")
    assert world.publication_id not in by_area.text
    # Another State's focal point: compact audience, not theirs.
    other = world.other_state_reader
    assert (await other.get(f"/portal/publications/{world.publication_id}")).status_code == 404
    listed = await other.get(f"/portal/publications?state={world.state.code}")
    assert world.publication_id not in listed.text
    assert (await other.get(f"/portal/reports/{world.report['id']}/consent")).status_code == 404


async def test_consent_page_shows_current_history_and_forms(world: World) -> None:
    report = world.report["id"]
    officer = await world.readers["consent_officer"].get(f"/portal/reports/{report}/consent")
    assert "NV/2026/1" in officer.text and "Title legislation" in officer.text
    assert f'action="/portal/reports/{report}/consent/preview"' in officer.text
    assert 'name="after_sequence" value="1"' in officer.text
    for area in AREAS:  # an officer may choose any section
        assert f'value="{world.section(area)}"' in officer.text
    state = await world.readers["state_focal_point"].get(f"/portal/reports/{report}/consent")
    assert "Narrow the consent" in state.text and 'name="after_sequence" value="1"' in state.text
    assert f'value="{world.section("legislation")}"' in state.text
    assert f'value="{world.section("human_rights")}"' not in state.text  # narrowing only
    assert f"/portal/reports/{report}/consent/withdraw" in state.text
    analyst = await world.readers["cted_analyst"].get(f"/portal/reports/{report}/consent")
    assert "consent/preview" not in analyst.text and "consent/withdraw" not in analyst.text
    draft = await world.readers["consent_officer"].get(
        f"/portal/reports/{world.draft['id']}/consent"
    )
    assert "consent/preview" not in draft.text


SECTION_IN_PREVIEW = re.compile(r'data-section-id="([0-9a-f-]{36})"')


async def test_preview_then_record_publishes_exactly_the_preview(
    world: World, database: Database
) -> None:
    officer = world.readers["consent_officer"]
    report = world.report["id"]
    chosen = [world.section("law_enforcement"), world.section("human_rights")]
    expiry = (clock.now() + timedelta(days=90)).date().isoformat()
    form = _decision(scope="partial", audience="member_states", expires_on=expiry)
    before = await _events(database, report)
    async with database.sessionmaker() as session:
        publications_before = int(
            (await session.exec(select(func.count()).select_from(Publication))).one()
        )
    preview = await officer.client.post(
        f"/portal/reports/{report}/consent/preview",
        data={"csrf_token": officer.csrf, **form, "sections": chosen},
    )
    assert preview.status_code == 200, preview.text
    previewed = SECTION_IN_PREVIEW.findall(preview.text)
    assert set(previewed) == set(chosen)
    assert body_of(world.state.code, "human_rights") in preview.text
    assert body_of(world.state.code, "legislation") not in preview.text
    assert "Member States" in preview.text and "Confirm and record" in preview.text
    # The preview wrote nothing but its audited read.
    assert await _events(database, report) == before
    async with database.sessionmaker() as session:
        assert publications_before == int(
            (await session.exec(select(func.count()).select_from(Publication))).one()
        )
    assert await audit_events(database, action="consent.preview", object_id=report)
    # Confirm: the hidden fields of the preview, as the browser sends them.
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', preview.text))
    sections = re.findall(r'type="hidden" name="sections" value="([^"]*)"', preview.text)
    hidden.pop("sections", None)
    recorded = await officer.client.post(
        f"/portal/reports/{report}/consent", data={**hidden, "sections": sections}
    )
    assert recorded.status_code == 303, recorded.text
    assert await _events(database, report) == before + 1
    events = await audit_events(database, action="consent.record", object_id=report)
    assert '"scope": "partial"' in events[-1].details
    listed = await world.api(
        "cted_analyst", "GET", "/api/v1/publications", params={"state": world.state.code}
    )
    publication = listed.json()["items"][0]
    assert publication["id"] != world.publication_id and publication["audience"] == "member_states"
    assert [s["id"] for s in publication["sections"]] == previewed
    for section in publication["sections"]:
        assert section["title"] in preview.text and section["body"] in preview.text
    assert publication["expires_at"].startswith(expiry)
    page = await world.readers["consent_officer"].get(f"/portal/reports/{report}/consent")
    assert "The consent decision was recorded." in page.text


async def test_preview_equals_publication_in_the_service(world: World, database: Database) -> None:
    """The same function builds both: compare the preview with the publication it makes."""
    subject = Subject(
        user_id=world.readers["consent_officer"].user.id,
        client_id=None,
        organization=world.state,
        roles=frozenset({"consent_officer"}),
        audit=AuditContext(),
    )
    access = Access(subject, "consent", "narrow", frozenset({DataScope.ALL}))
    decision = ConsentDecision(
        scope="partial",  # type: ignore[arg-type]
        sections=[
            uuid.UUID(world.section("human_rights")),
            uuid.UUID(world.section("legislation")),
        ],
        reference="NV/2026/5",
        after_sequence=1,
    )
    report_id = uuid.UUID(world.report["id"])
    async with database.transaction() as session:
        preview = await service.preview(session, access, report_id, decision, may_broaden=True)
        await service.record(session, access, report_id, decision, may_broaden=True)
        publication = (
            await session.exec(
                service.readable_publications(access).where(col(Publication.report_id) == report_id)
            )
        ).one()
        published = (await service.read_model(session, [publication]))[0]
    assert preview.sections == published.sections
    # The files that go with the chosen sections: shown before, published after.
    assert preview.attachments == published.attachments
    assert sorted(file["filename"] for file in preview.attachments) == [
        "human_rights.pdf",
        "legislation.pdf",
    ]
    assert [s.area for s in preview.sections] == ["legislation", "human_rights"]


async def test_every_post_without_csrf_is_refused(world: World, database: Database) -> None:
    report = world.report["id"]
    before = await _events(database, report)
    for role in ("consent_officer", "state_focal_point"):
        person = world.readers[role]
        for path, form in (
            (f"/portal/reports/{report}/consent/preview", _decision()),
            (f"/portal/reports/{report}/consent", _decision(scope="none")),
            (f"/portal/reports/{report}/consent/withdraw", {"reason": "x"}),
        ):
            response = await person.post_without_csrf(path, form)
            assert response.status_code == 403, (role, path)
    assert await _events(database, report) == before
    entity = world.readers["entity_focal_point"]
    assert (await entity.get(f"/portal/publications/{world.publication_id}")).status_code == 200


async def test_the_state_withdraws_and_the_publication_disappears(
    world: World, database: Database
) -> None:
    state = world.readers["state_focal_point"]
    entity = world.readers["entity_focal_point"]
    report = world.report["id"]
    assert world.publication_id in (await entity.get("/portal/publications")).text
    confirm = await state.get(f"/portal/reports/{report}/consent/withdraw")
    assert confirm.status_code == 200
    missing_reason = await state.post(f"/portal/reports/{report}/consent/withdraw", {"reason": ""})
    assert missing_reason.status_code == 422 and 'id="reason-error"' in missing_reason.text
    done = await state.post(
        f"/portal/reports/{report}/consent/withdraw",
        {"reason": "Cabinet decision"},
    )
    assert done.status_code == 303, done.text
    events = await audit_events(database, action="consent.withdraw", object_id=report)
    assert '"revoked_publications": 1' in events[-1].details
    listed = await entity.get(f"/portal/publications?state={world.state.code}")
    assert world.publication_id not in listed.text
    assert body_of(world.state.code, "legislation") not in listed.text
    page = await entity.get(f"/portal/publications/{world.publication_id}")
    assert page.status_code == 404
    assert body_of(world.state.code, "legislation") not in page.text
    download = await entity.get(f"/portal/attachments/{world.section_attachment}")
    assert download.status_code == 404
    consent = await state.get(f"/portal/reports/{report}/consent")
    assert "Cabinet decision" in consent.text and "Withdraw consent" not in consent.text


async def test_a_stale_decision_is_a_409_page(world: World, database: Database) -> None:
    report = world.report["id"]
    officer = world.readers["consent_officer"]
    seen = await officer.get(f"/portal/reports/{report}/consent")
    assert 'name="after_sequence" value="1"' in seen.text
    # Meanwhile the State narrows to nothing.
    narrowed = await world.readers["state_focal_point"].post(
        f"/portal/reports/{report}/consent", _decision(scope="none")
    )
    assert narrowed.status_code == 303, narrowed.text
    before = await _events(database, report)
    stale = await officer.post(f"/portal/reports/{report}/consent", _decision(after_sequence="1"))
    assert stale.status_code == 409
    assert "Consent changed since you read it" in stale.text and "Traceback" not in stale.text
    preview = await officer.post(
        f"/portal/reports/{report}/consent/preview", _decision(after_sequence="1")
    )
    assert preview.status_code == 409
    assert await _events(database, report) == before
    fresh = await officer.post(f"/portal/reports/{report}/consent", _decision(after_sequence="2"))
    assert fresh.status_code == 303
    # A withdrawal is never stale: it takes effect whatever came before it.
    withdraw = await world.readers["state_focal_point"].post(
        f"/portal/reports/{report}/consent/withdraw", {"reason": "late", "after_sequence": "1"}
    )
    assert withdraw.status_code == 303


async def test_a_state_may_only_narrow(world: World, database: Database) -> None:
    state = world.readers["state_focal_point"]
    report = world.report["id"]
    before = await _events(database, report)
    broader = await state.post(f"/portal/reports/{report}/consent/preview", _decision(scope="full"))
    assert broader.status_code == 403 and "only narrow" in broader.text
    wider = await state.client.post(
        f"/portal/reports/{report}/consent",
        data={
            "csrf_token": state.csrf,
            **_decision(scope="partial", audience="public"),
            "sections": [world.section("legislation")],
        },
    )
    assert wider.status_code == 403
    assert await _events(database, report) == before
    expiry = (clock.now() + timedelta(days=30)).date().isoformat()
    narrower = await state.client.post(
        f"/portal/reports/{report}/consent",
        data={
            "csrf_token": state.csrf,
            **_decision(scope="partial", expires_on=expiry, reference=""),
            "sections": [world.section("legislation")],
        },
    )
    assert narrower.status_code == 303, narrower.text
    assert await _events(database, report) == before + 1


async def test_decision_form_errors_are_shown_again(world: World, database: Database) -> None:
    officer = world.readers["consent_officer"]
    report = world.report["id"]
    before = await _events(database, report)
    yesterday = (clock.now() - timedelta(days=1)).date().isoformat()
    cases = [
        (_decision(scope="partial"), "sections"),
        (_decision(expires_on=yesterday), "expires_on"),
        (_decision(expires_on="31/12/2030"), "expires_on"),
        (_decision(scope="everything"), "scope"),
    ]
    for form, name in cases:
        response = await officer.post(f"/portal/reports/{report}/consent/preview", form)
        assert response.status_code == 422, (form, response.text[:300])
        assert f'id="{name}-error"' in response.text or f'href="#{name}"' in response.text, form
        assert 'value="NV/2026/99"' in response.text  # typed values kept
        assert 'name="after_sequence" value="1"' in response.text
    assert await _events(database, report) == before


async def test_publication_filters(world: World) -> None:
    analyst = world.readers["cted_analyst"]
    year = clock.now().year
    same_year = await analyst.get(f"/portal/publications?state={world.state.code}&year={year}")
    assert world.publication_id in same_year.text
    other_year = await analyst.get(f"/portal/publications?state={world.state.code}&year=1999")
    assert world.publication_id not in other_year.text
    assert (await analyst.get("/portal/publications?area=nonsense")).status_code == 422
    assert (await analyst.get("/portal/publications?year=abc")).status_code == 422


async def test_saving_the_prefilled_form_keeps_the_exact_expiry(world: World) -> None:
    report = world.report["id"]
    recorded = await world.api(
        "consent_officer",
        "POST",
        f"/api/v1/reports/{report}/consent",
        json={
            "scope": "partial",
            "sections": [world.section("legislation")],
            "audience": "compact",
            "reference": "NV/2026/2",
            "expires_at": "2030-06-01T18:00:00Z",
        },
    )
    assert recorded.status_code == 201, recorded.text
    state = world.readers["state_focal_point"]
    page = await state.get(f"/portal/reports/{report}/consent")
    exact = re.search(r'name="expires_exact" value="([^"]+)"', page.text)
    sequence = re.search(r'name="after_sequence" value="(\d+)"', page.text)
    assert exact is not None and sequence is not None
    narrowed = await state.post(
        f"/portal/reports/{report}/consent",
        {
            "scope": "partial",
            "sections": world.section("legislation"),
            "audience": "compact",
            "expires_on": "2030-06-01",
            "expires_exact": exact.group(1),
            "after_sequence": sequence.group(1),
        },
    )
    assert narrowed.status_code == 303, narrowed.text
    current = (
        await world.api("consent_officer", "GET", f"/api/v1/reports/{report}/consent")
    ).json()
    assert current["current"]["sequence"] == int(sequence.group(1)) + 1
    assert current["current"]["expires_at"].startswith("2030-06-01T18:00:00")
