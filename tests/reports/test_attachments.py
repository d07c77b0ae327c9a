"""Attachments: type from content, exact bytes back, stored once, consent inherited."""

import io
import zipfile
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import func, select

from ctcp.app import create_app
from ctcp.core.db import Database
from ctcp.reports.models import AttachmentBlob
from tests.factories import audit_events, decide, make_org, make_user, new_client, sign_in

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


async def _client(app: FastAPI, database: Database, role: str, **kw: Any) -> httpx.AsyncClient:
    user = await make_user(database, roles=(role,), **kw)
    client = new_client(app)
    await sign_in(client, user.email)
    return client


async def _report(
    analyst: httpx.AsyncClient, state_code: str, *, adopt: bool = False
) -> dict[str, Any]:
    report = (
        await analyst.post(
            "/api/v1/reports",
            json={
                "state": state_code,
                "title": "Visit",
                "kind": "focused",
                "visit_start": "2026-04-01",
                "visit_end": "2026-04-02",
                "sections": [
                    {"area": "legislation", "title": "L", "body": "Law"},
                    {"area": "law_enforcement", "title": "P", "body": "Police"},
                ],
            },
        )
    ).json()
    if adopt:
        await analyst.post(f"/api/v1/reports/{report['id']}/adopt")
    return report


async def _upload(
    client: httpx.AsyncClient,
    report_id: str,
    content: bytes,
    name: str,
    section_id: str | None = None,
) -> httpx.Response:
    data = {"section_id": section_id} if section_id else None
    return await client.post(
        f"/api/v1/reports/{report_id}/attachments", files={"file": (name, content)}, data=data
    )


@pytest.fixture
async def analyst(app: FastAPI, database: Database) -> httpx.AsyncClient:
    return await _client(app, database, "cted_analyst")


async def test_upload_then_download_the_exact_bytes(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    report = await _report(analyst, state.code)
    uploaded = await _upload(analyst, report["id"], PDF, "findings.pdf")
    assert uploaded.status_code == 201, uploaded.text
    meta = uploaded.json()
    assert meta["media_type"] == "application/pdf" and meta["size"] == len(PDF)
    import hashlib

    assert meta["sha256"] == hashlib.sha256(PDF).hexdigest()
    download = await analyst.get(f"/api/v1/attachments/{meta['id']}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    reads = await audit_events(database, object_id=meta["id"], action="attachment.read")
    assert len(reads) == 1


async def test_the_type_comes_from_the_content_not_the_name(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    report = await _report(analyst, (await make_org(database)).code)
    fake = await _upload(analyst, report["id"], b"#!/bin/sh\nrm -rf /\n", "report.pdf")
    assert fake.status_code == 422
    image = await _upload(analyst, report["id"], PNG, "notes.txt")
    assert image.status_code == 201 and image.json()["media_type"] == "image/png"
    document = await _upload(analyst, report["id"], docx(), "x.bin")
    assert document.json()["media_type"].endswith("wordprocessingml.document")
    # The stored name ends as the content is: nothing opens a PDF as a web page.
    assert (image.json()["filename"], document.json()["filename"]) == ("notes.png", "x.docx")


@pytest.mark.parametrize(
    ("name", "content", "stored"),
    [
        ("report.html", PDF, "report.pdf"),
        ("report.PDF", PDF, "report.PDF"),
        ("findings", PDF, "findings.pdf"),
        ("photo.jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "photo.jpeg"),
        ("photo.svg", PNG, "photo.png"),
        (".html", PDF, "html.pdf"),
    ],
)
async def test_the_stored_name_carries_the_detected_types_extension(
    analyst: httpx.AsyncClient, database: Database, name: str, content: bytes, stored: str
) -> None:
    report = await _report(analyst, (await make_org(database)).code)
    uploaded = await _upload(analyst, report["id"], content, name)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["filename"] == stored
    download = await analyst.get(f"/api/v1/attachments/{uploaded.json()['id']}")
    assert stored in download.headers["content-disposition"]


async def test_an_adopted_report_accepts_no_attachment(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    report = await _report(analyst, (await make_org(database)).code, adopt=True)
    refused = await _upload(analyst, report["id"], PDF, "late.pdf", report["sections"][0]["id"])
    assert refused.status_code == 409, refused.text
    assert "amend" in refused.json()["detail"]
    full = (await analyst.get(f"/api/v1/reports/{report['id']}")).json()
    assert full["attachments"] == []
    denied = await audit_events(database, action="attachment.create", object_id=report["id"])
    assert [e.outcome for e in denied] == ["denied"]


async def test_file_names_are_sanitized(analyst: httpx.AsyncClient, database: Database) -> None:
    report = await _report(analyst, (await make_org(database)).code)
    uploaded = await _upload(analyst, report["id"], PDF, "../../etc/pa<ss>wd|.pdf")
    assert uploaded.json()["filename"] == "passwd.pdf"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("bell\x07and\nnewline.pdf", "bellandnewline.pdf"),
        ("..", "attachment"),
        ("", "attachment"),
        ("x" * 300 + ".pdf", "x" * 200),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    from ctcp.reports.attachments import safe_filename

    assert safe_filename(name) == safe


async def test_identical_content_is_stored_once(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    unique = PDF + b"unique-content-for-dedupe"
    for _ in range(2):
        report = await _report(analyst, (await make_org(database)).code)
        assert (await _upload(analyst, report["id"], unique, "a.pdf")).status_code == 201
    import hashlib

    async with database.sessionmaker() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(AttachmentBlob)
                .where(AttachmentBlob.sha256 == hashlib.sha256(unique).hexdigest())
            )
        ).one()
    assert count == 1


async def test_too_large_is_413_and_nothing_is_written(settings: Any, database: Database) -> None:
    small = create_app(settings.model_copy(update={"attachment_max_bytes": 2048}))
    async with small.router.lifespan_context(small):
        analyst = await _client(small, database, "cted_analyst")
        report = await _report(analyst, (await make_org(database)).code)
        response = await _upload(analyst, report["id"], PDF + b"x" * 4096, "big.pdf")
        assert response.status_code == 413
        full = (await analyst.get(f"/api/v1/reports/{report['id']}")).json()
        events = await audit_events(database, action="attachment.create")
        assert all(report["id"] not in e.details for e in events)
        assert full["id"] == report["id"]


async def test_a_section_of_another_report_is_refused(
    analyst: httpx.AsyncClient, database: Database
) -> None:
    first = await _report(analyst, (await make_org(database)).code)
    second = await _report(analyst, (await make_org(database)).code)
    response = await _upload(
        analyst, first["id"], PDF, "a.pdf", section_id=second["sections"][0]["id"]
    )
    assert response.status_code == 422


async def test_attachments_follow_the_consent_of_their_section(
    app: FastAPI, analyst: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database)
    report = await _report(analyst, state.code)
    legislation, police = (s["id"] for s in report["sections"])
    on_legislation = (
        await _upload(analyst, report["id"], PDF + b"1", "l.pdf", section_id=legislation)
    ).json()["id"]
    on_police = (
        await _upload(analyst, report["id"], PDF + b"2", "p.pdf", section_id=police)
    ).json()["id"]
    whole = (await _upload(analyst, report["id"], PDF + b"3", "w.pdf")).json()["id"]
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    officer = await _client(app, database, "consent_officer")
    entity = await _client(app, database, "entity_focal_point", kind="compact_entity")
    await decide(
        officer,
        f"/api/v1/reports/{report['id']}/consent",
        {
            "scope": "partial",
            "sections": [legislation],
            "audience": "compact",
            "reference": "NV/1",
        },
    )
    statuses = {
        name: (await entity.get(f"/api/v1/attachments/{aid}")).status_code
        for name, aid in (("legislation", on_legislation), ("police", on_police), ("whole", whole))
    }
    assert statuses == {"legislation": 200, "police": 404, "whole": 404}
    listed = (await entity.get("/api/v1/publications", params={"state": state.code})).json()
    assert [a["id"] for a in listed["items"][0]["attachments"]] == [on_legislation]
    # A single read (its own query) holds exactly what the list does.
    partial = listed["items"][0]
    assert (await entity.get(f"/api/v1/publications/{partial['id']}")).json() == partial
    assert [s["id"] for s in partial["sections"]] == [legislation]
    await decide(
        officer,
        f"/api/v1/reports/{report['id']}/consent",
        {"scope": "full", "audience": "compact", "reference": "NV/2"},
    )
    assert (await entity.get(f"/api/v1/attachments/{whole}")).status_code == 200
    full = (await entity.get("/api/v1/publications", params={"state": state.code})).json()
    assert full["items"][0]["id"] != partial["id"]
    assert (await entity.get(f"/api/v1/publications/{full['items'][0]['id']}")).json() == (
        full["items"][0]
    )
    assert [s["id"] for s in full["items"][0]["sections"]] == [legislation, police]
    assert {a["id"] for a in full["items"][0]["attachments"]} == {on_legislation, on_police, whole}
    assert (await entity.get(f"/api/v1/publications/{partial['id']}")).status_code == 404
    state_focal = await _client(app, database, "state_focal_point", org=state)
    await state_focal.post(
        f"/api/v1/reports/{report['id']}/consent/withdraw", json={"reason": "Withdrawn"}
    )
    for attachment_id in (on_legislation, on_police, whole):
        assert (await entity.get(f"/api/v1/attachments/{attachment_id}")).status_code == 404
    assert (await state_focal.get(f"/api/v1/attachments/{whole}")).status_code == 200
