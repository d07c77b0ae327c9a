"""A publication is the snapshot of what the State consented to, in every part.

The penetration test's finding: a file attached to an adopted, consented report reached
every audience of its publication at once, because a publication's attachments were
worked out when it was read. These tests change every part of a report after consent, by
every route that exists (and, for attachments, behind the routes' back), and check that
no audience sees the change.
"""

import hashlib
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from ctcp.core.db import Database
from ctcp.reports.models import Attachment, AttachmentBlob, AttachmentChunk
from tests.factories import audit_events, decide, make_org, make_user, new_client, sign_in

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _client(app: FastAPI, database: Database, role: str, **kw: Any) -> httpx.AsyncClient:
    client = new_client(app)
    await sign_in(client, (await make_user(database, roles=(role,), **kw)).email)
    return client


def _content(title: str, marker: str, language: str = "en") -> dict[str, Any]:
    return {
        "title": title,
        "kind": "focused",
        "language": language,
        "visit_start": "2026-05-04",
        "visit_end": "2026-05-08",
        "sections": [
            {
                "area": "legislation",
                "title": f"Legislation {marker}",
                "body": f"Law text {marker}",
                "recommendations": [{"text": f"Criminalize {marker}", "priority": "high"}],
            },
            {"area": "law_enforcement", "title": f"Police {marker}", "body": f"Police {marker}"},
        ],
    }


async def _upload(
    client: httpx.AsyncClient, report_id: str, content: bytes, name: str, section: str | None
) -> httpx.Response:
    return await client.post(
        f"/api/v1/reports/{report_id}/attachments",
        files={"file": (name, content)},
        data={"section_id": section} if section else None,
    )


async def _views(
    entity: httpx.AsyncClient,
    other_state: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    state_code: str,
    markers: tuple[str, ...],
) -> dict[str, Any]:
    """Every way each audience reads the State's publications: lists, details, the public
    API, and search for the consented and the changed text."""
    views: dict[str, Any] = {}
    for name, client, prefix in (
        ("entity", entity, "/api/v1/publications"),
        ("other_state", other_state, "/api/v1/publications"),
        ("anonymous", anonymous, "/api/v1/public/publications"),
    ):
        listed = (await client.get(prefix, params={"state": state_code})).json()["items"]
        views[f"{name} list"] = listed
        for item in listed:
            views[f"{name} {item['id']}"] = (await client.get(f"{prefix}/{item['id']}")).json()
    for name, client in (("entity", entity), ("other_state", other_state)):
        for q in markers:
            views[f"{name} search {q}"] = (
                await client.get("/api/v1/search", params={"q": q})
            ).json()
    return views


async def test_no_change_after_consent_reaches_any_audience(
    app: FastAPI, database: Database
) -> None:
    state = await make_org(database)
    analyst = await _client(app, database, "cted_analyst")
    officer = await _client(app, database, "consent_officer")
    entity = await _client(app, database, "entity_focal_point", kind="compact_entity")
    other_state = await _client(app, database, "state_focal_point")
    anonymous = new_client(app)
    before_text, after_text = f"b{uuid.uuid4().hex[:12]}", f"a{uuid.uuid4().hex[:12]}"
    markers = (before_text, after_text)

    created = await analyst.post(
        "/api/v1/reports", json={"state": state.code} | _content("Visit", before_text)
    )
    assert created.status_code == 201, created.text
    report = created.json()
    legislation = report["sections"][0]["id"]
    carried = (await _upload(analyst, report["id"], PDF, "annex.pdf", legislation)).json()
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    consent = await decide(
        officer,
        f"/api/v1/reports/{report['id']}/consent",
        {"scope": "full", "audience": "public", "reference": "NV/2026/3"},
    )
    assert consent.status_code == 201, consent.text
    before = await _views(entity, other_state, anonymous, state.code, markers)
    assert before[f"entity search {before_text}"]["items"], "the consented text is found"
    publication = before["entity list"][0]
    assert [a["id"] for a in publication["attachments"]] == [carried["id"]]
    assert publication["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()

    # Every route that changes a report, tried on the consented version.
    edit = await analyst.put(
        f"/api/v1/reports/{report['id']}",
        json=_content("Visit changed", after_text, language="fr"),
    )
    assert edit.status_code == 409
    for section in (None, legislation):
        late = await _upload(analyst, report["id"], PDF + b"late", "late.pdf", section)
        assert late.status_code == 409, late.text
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 409
    # Amending makes a new version; its changes, files and adoption are that version's.
    amended = (await analyst.post(f"/api/v1/reports/{report['id']}/amend")).json()
    changed = await analyst.put(
        f"/api/v1/reports/{amended['id']}", json=_content("Visit changed", after_text, "fr")
    )
    assert changed.status_code == 200, changed.text
    new_section = changed.json()["sections"][0]["id"]
    for section in (None, new_section):
        added = await _upload(analyst, amended["id"], PDF + b"v2", "v2.pdf", section)
        assert added.status_code == 201, added.text
    assert (await analyst.post(f"/api/v1/reports/{amended['id']}/adopt")).status_code == 200

    after = await _views(entity, other_state, anonymous, state.code, markers)
    assert after == before
    assert after[f"entity search {after_text}"]["items"] == []
    full = (await analyst.get(f"/api/v1/reports/{report['id']}")).json()
    assert full["title"] == "Visit" and len(full["attachments"]) == 1
    refusals = await audit_events(
        database, action="attachment.create", outcome="denied", object_id=report["id"]
    )
    assert len(refusals) == 2


async def test_a_file_that_appears_after_consent_is_not_carried(
    app: FastAPI, database: Database
) -> None:
    """Even a file that reaches an adopted report behind the routes' back (a restore, a
    hand edit, or an upload before files were fixed at consent) reaches no audience: the
    publication carries what its consent fixed, a State's narrowing adds no file, and only
    a consent officer's decision that names what it saw publishes it."""
    state = await make_org(database)
    analyst = await _client(app, database, "cted_analyst")
    officer = await _client(app, database, "consent_officer")
    focal = await _client(app, database, "state_focal_point", org=state)
    entity = await _client(app, database, "entity_focal_point", kind="compact_entity")
    created = await analyst.post(
        "/api/v1/reports", json={"state": state.code} | _content("Visit", "X")
    )
    report = created.json()
    legislation = report["sections"][0]["id"]
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    consent = await decide(
        officer,
        f"/api/v1/reports/{report['id']}/consent",
        {"scope": "full", "audience": "member_states", "reference": "NV/2026/4"},
    )
    assert consent.status_code == 201, consent.text
    sha256 = hashlib.sha256(PNG).hexdigest()
    smuggled: list[uuid.UUID] = []
    async with database.transaction() as session:
        if await session.get(AttachmentBlob, sha256) is None:
            session.add(AttachmentBlob(sha256=sha256, size=len(PNG), media_type="image/png"))
            await session.flush()
            # Its bytes too: a download checks them against the sha256.
            session.add(AttachmentChunk(sha256=sha256, sequence=0, data=PNG))
            await session.flush()
        for section in (None, uuid.UUID(legislation)):
            attachment = Attachment(
                report_id=uuid.UUID(report["id"]),
                section_id=section,
                filename="smuggled.png",
                media_type="image/png",
                size=len(PNG),
                sha256=sha256,
            )
            session.add(attachment)
            smuggled.append(attachment.id)
    listed = (await entity.get("/api/v1/publications", params={"state": state.code})).json()
    publication = listed["items"][0]
    assert publication["attachments"] == []
    detail = (await entity.get(f"/api/v1/publications/{publication['id']}")).json()
    assert detail["attachments"] == []
    for attachment_id in smuggled:
        assert (await entity.get(f"/api/v1/attachments/{attachment_id}")).status_code == 404
    # The State narrows the audience: its new publication carries no file it did not.
    path = f"/api/v1/reports/{report['id']}/consent"
    narrowed = await focal.post(path, json={"scope": "full", "audience": "compact"})
    assert narrowed.status_code == 201, narrowed.text
    listed = (await entity.get("/api/v1/publications", params={"state": state.code})).json()
    assert listed["items"][0]["id"] != publication["id"]
    assert listed["items"][0]["attachments"] == []
    for attachment_id in smuggled:
        assert (await entity.get(f"/api/v1/attachments/{attachment_id}")).status_code == 404
    # The same decision from an officer would publish them: that broadens, so it names
    # the decision it saw (the preview, built by the same check, lists them).
    same = {"scope": "full", "audience": "compact", "reference": "NV/2026/5"}
    blind = await officer.post(path, json=same)
    assert blind.status_code == 422, blind.text
    again = await officer.post(path, json=same | {"after_sequence": 2})
    assert again.status_code == 201, again.text
    renewed = (await entity.get("/api/v1/publications", params={"state": state.code})).json()
    assert {a["id"] for a in renewed["items"][0]["attachments"]} == {str(i) for i in smuggled}
    for attachment_id in smuggled:
        assert (await entity.get(f"/api/v1/attachments/{attachment_id}")).status_code == 200


async def test_a_file_whose_content_changed_after_consent_is_a_new_file(
    app: FastAPI, database: Database
) -> None:
    """A file row pointed at other content behind the routes' back is no longer the file
    consented to: downloads through the publication stop, and a State's narrowing does
    not carry the changed file into its new publication."""
    state = await make_org(database)
    analyst = await _client(app, database, "cted_analyst")
    officer = await _client(app, database, "consent_officer")
    focal = await _client(app, database, "state_focal_point", org=state)
    entity = await _client(app, database, "entity_focal_point", kind="compact_entity")
    report = (
        await analyst.post("/api/v1/reports", json={"state": state.code} | _content("V", "Y"))
    ).json()
    pdf = PDF + uuid.uuid4().bytes
    uploaded = (await _upload(analyst, report["id"], pdf, "annex.pdf", None)).json()
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    path = f"/api/v1/reports/{report['id']}/consent"
    full = {"scope": "full", "audience": "member_states", "reference": "NV/2026/6"}
    assert (await decide(officer, path, full)).status_code == 201
    assert (await entity.get(f"/api/v1/attachments/{uploaded['id']}")).status_code == 200
    other = PNG + uuid.uuid4().bytes
    sha256 = hashlib.sha256(other).hexdigest()
    async with database.transaction() as session:
        session.add(AttachmentBlob(sha256=sha256, size=len(other), media_type="image/png"))
        await session.flush()
        session.add(AttachmentChunk(sha256=sha256, sequence=0, data=other))
        attachment = await session.get(Attachment, uuid.UUID(uploaded["id"]))
        assert attachment is not None
        attachment.sha256, attachment.size = sha256, len(other)
        session.add(attachment)
    assert (await entity.get(f"/api/v1/attachments/{uploaded['id']}")).status_code == 404
    narrowed = await focal.post(path, json={"scope": "full", "audience": "compact"})
    assert narrowed.status_code == 201, narrowed.text
    listed = (await entity.get("/api/v1/publications", params={"state": state.code})).json()
    assert listed["items"][0]["attachments"] == []
    assert (await entity.get(f"/api/v1/attachments/{uploaded['id']}")).status_code == 404
