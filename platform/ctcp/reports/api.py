"""Visit reports: analysts write; the State's focal points and the Secretariat read."""

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status

from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.reports import service
from ctcp.reports.models import ReportKind, ReportStatus
from ctcp.reports.schemas import (
    AttachmentRead,
    ReportContent,
    ReportCreate,
    ReportRead,
    ReportSummary,
)
from ctcp.reports.service import ReportFilters

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
CanRead = Annotated[Access, guard("report", "read")]
CanWrite = Annotated[Access, guard("report", "write")]


@router.post(
    "",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    summary="Draft a visit report",
    responses=problem_responses(401, 403, 422),
)
async def create_report(body: ReportCreate, session: SessionDep, access: CanWrite) -> ReportRead:
    """A new draft (version 1) with its sections and recommendations."""
    return await service.draft_report(session, access, body)


@router.get(
    "",
    response_model=Page[ReportSummary],
    summary="List visit reports",
    responses=problem_responses(401, 403, 422),
)
async def list_reports(
    session: SessionDep,
    access: CanRead,
    state: Annotated[str | None, Query(max_length=32)] = None,
    report_status: Annotated[ReportStatus | None, Query(alias="status")] = None,
    kind: Annotated[ReportKind | None, Query()] = None,
    year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    lineage: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[ReportSummary]:
    """Every version in the caller's scope, newest visit first; filter by State, status,
    kind, year of the visit or lineage (the versions of one report)."""
    filters = ReportFilters(
        state=state, status=report_status, kind=kind, year=year, lineage=lineage
    )
    return await service.list_reports(session, access, filters, PageRequest(limit, cursor))


@router.get(
    "/{report_id}",
    response_model=ReportRead,
    summary="A visit report in full",
    responses=problem_responses(401, 403, 404),
)
async def get_report(report_id: uuid.UUID, session: SessionDep, access: CanRead) -> ReportRead:
    """The full text; outside the caller's scope, 404. Every read is audited."""
    return await service.read_report(session, access, report_id)


@router.put(
    "/{report_id}",
    response_model=ReportRead,
    summary="Edit a draft report",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_report(
    report_id: uuid.UUID, body: ReportContent, session: SessionDep, access: CanWrite
) -> ReportRead:
    return await service.update_report(session, access, report_id, body)


@router.post(
    "/{report_id}/adopt",
    response_model=ReportRead,
    summary="Adopt a draft",
    responses=problem_responses(401, 403, 404, 409),
)
async def adopt_report(report_id: uuid.UUID, session: SessionDep, access: CanWrite) -> ReportRead:
    return await service.adopt_report(session, access, report_id)


@router.post(
    "/{report_id}/amend",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    summary="Amend an adopted report",
    responses=problem_responses(401, 403, 404, 409),
)
async def amend_report(report_id: uuid.UUID, session: SessionDep, access: CanWrite) -> ReportRead:
    """A new draft version; the adopted one stays readable as it was."""
    return await service.amend_report(session, access, report_id)


@router.post(
    "/{report_id}/attachments",
    response_model=AttachmentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Attach a file to a report",
    responses=problem_responses(401, 403, 404, 413, 422),
)
async def upload_attachment(
    report_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    access: CanWrite,
    file: Annotated[UploadFile, File(description="PDF, DOCX, XLSX, ODT, PNG or JPEG")],
    section_id: Annotated[uuid.UUID | None, Form()] = None,
) -> AttachmentRead:
    """The type is read from the content, not the name; identical content is stored once.
    An adopted version accepts no new file (409: amend it)."""
    return await service.attach_file(
        session,
        access,
        report_id,
        section_id,
        file.file,
        file.filename,
        request.app.state.settings.attachment_max_bytes,
    )
