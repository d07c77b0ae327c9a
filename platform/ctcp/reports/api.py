"""Visit reports: analysts write; the State's focal points and the Secretariat read."""

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from sqlmodel import col, extract

from ctcp.audit import service as audit
from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.core.schemas import problem_responses
from ctcp.organizations.models import Organization
from ctcp.reports import attachments, service
from ctcp.reports.models import ReportKind, ReportStatus, VisitReport
from ctcp.reports.schemas import (
    AttachmentRead,
    ReportContent,
    ReportCreate,
    ReportRead,
    ReportSummary,
)

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
    written = await service.create_report(session, access, state_code=body.state, content=body)
    return await service.full_text(session, written.report, written.sections)


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
    statement = service.readable_reports(access)
    if lineage is not None:
        statement = statement.where(col(VisitReport.lineage_id) == lineage)
    if state is not None:
        statement = statement.join(
            Organization, col(Organization.id) == col(VisitReport.state_id)
        ).where(col(Organization.code) == state.upper())
    if report_status is not None:
        statement = statement.where(col(VisitReport.status) == report_status.value)
    if kind is not None:
        statement = statement.where(col(VisitReport.kind) == kind.value)
    if year is not None:
        statement = statement.where(extract("year", col(VisitReport.visit_start_date)) == year)
    order = [col(VisitReport.visit_start_date), col(VisitReport.id)]
    rows = (
        await session.exec(
            keyset(statement, order=order, descending=True, limit=limit, cursor=cursor)
        )
    ).all()
    page = page_of(rows, limit=limit, key=lambda r: [r.visit_start_date, r.id], item=lambda r: r)
    audit.record(
        session,
        access.audit,
        "report.list",
        object_type="report",
        details={"ids": [str(r.id) for r in page.items]},
        read=True,
    )
    return Page[ReportSummary](
        items=await service.summaries(session, page.items), next_cursor=page.next_cursor
    )


@router.get(
    "/{report_id}",
    response_model=ReportRead,
    summary="A visit report in full",
    responses=problem_responses(401, 403, 404),
)
async def get_report(report_id: uuid.UUID, session: SessionDep, access: CanRead) -> ReportRead:
    """The full text; outside the caller's scope, 404. Every read is audited."""
    report = await service.get_report(session, access, report_id)
    audit.record(
        session, access.audit, "report.read", object_type="report", object_id=report.id, read=True
    )
    return await service.full_text(session, report)


@router.put(
    "/{report_id}",
    response_model=ReportRead,
    summary="Edit a draft report",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_report(
    report_id: uuid.UUID, body: ReportContent, session: SessionDep, access: CanWrite
) -> ReportRead:
    written = await service.update_draft(session, access, report_id, body)
    return await service.full_text(session, written.report, written.sections)


@router.post(
    "/{report_id}/adopt",
    response_model=ReportRead,
    summary="Adopt a draft",
    responses=problem_responses(401, 403, 404, 409),
)
async def adopt_report(report_id: uuid.UUID, session: SessionDep, access: CanWrite) -> ReportRead:
    report = await service.adopt(session, access, report_id)
    return await service.full_text(session, report)


@router.post(
    "/{report_id}/amend",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    summary="Amend an adopted report",
    responses=problem_responses(401, 403, 404, 409),
)
async def amend_report(report_id: uuid.UUID, session: SessionDep, access: CanWrite) -> ReportRead:
    """A new draft version; the adopted one stays readable as it was."""
    report = await service.amend(session, access, report_id)
    return await service.full_text(session, report)


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
    report = await service.get_report(session, access, report_id, lock=True)
    attachment = await attachments.store(
        session,
        access,
        report,
        section_id,
        file.file,
        file.filename,
        request.app.state.settings.attachment_max_bytes,
    )
    return AttachmentRead.model_validate(attachment)
