"""Visit-report rules: who sees which report, drafting, adoption and amendment."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import delete, false, func, insert
from sqlmodel import SQLModel, col, extract, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.reports import attachments
from ctcp.reports.models import (
    Attachment,
    Recommendation,
    ReportKind,
    ReportSection,
    ReportStatus,
    VisitReport,
)
from ctcp.reports.schemas import (
    AttachmentRead,
    RecommendationRead,
    ReportContent,
    ReportCreate,
    ReportRead,
    ReportSummary,
    SectionRead,
    StateRef,
)


def readable_reports(access: Access) -> SelectOfScalar[VisitReport]:
    """The one place a report-read scope becomes SQL: every version the caller may read."""
    statement = select(VisitReport)
    if DataScope.ALL in access.scopes:
        return statement
    if DataScope.OWN_STATE in access.scopes:
        return statement.where(col(VisitReport.state_id) == access.organization.id)
    return statement.where(false())


async def member_state(session: AsyncSession, code: str) -> Organization:
    state = (
        await session.exec(
            select(Organization).where(
                col(Organization.code) == code,
                col(Organization.kind) == OrganizationKind.MEMBER_STATE.value,
            )
        )
    ).first()
    if state is None:
        raise ValidationError(
            f"{code!r} is not a Member State on the platform.", loc=["body", "state"]
        )
    return state


@dataclass(frozen=True)
class Written:
    """A draft just written, and its sections as they now read (no need to read them back)."""

    report: VisitReport
    sections: list[SectionRead]


async def _insert_all(
    session: AsyncSession, *batches: tuple[type[SQLModel], list[dict[str, Any]]]
) -> None:
    """One executemany INSERT per non-empty batch, in order, after the session's pending
    rows (the rows these point at)."""
    await session.flush()
    connection = await session.connection()
    for table, rows in batches:
        if rows:
            await connection.execute(insert(table), rows)


async def _write_sections(
    session: AsyncSession, report: VisitReport, content: ReportContent
) -> list[SectionRead]:
    """Insert the content's sections and recommendations (two executemany INSERTs); as read."""
    sections: list[dict[str, Any]] = []
    recommendations: list[dict[str, Any]] = []
    written: list[SectionRead] = []
    for position, section_in in enumerate(content.sections):
        section = {
            "id": uuid.uuid4(),
            "report_id": report.id,
            "area": section_in.area.value,
            "title": section_in.title,
            "body": section_in.body,
            "position": position,
        }
        sections.append(section)
        read = SectionRead(
            id=section["id"],
            area=section["area"],
            title=section["title"],
            body=section["body"],
            recommendations=[],
        )
        for index, recommendation in enumerate(section_in.recommendations):
            row = {
                "id": uuid.uuid4(),
                "section_id": section["id"],
                "text": recommendation.text,
                "priority": recommendation.priority.value,
                "position": index,
            }
            recommendations.append(row)
            read.recommendations.append(
                RecommendationRead(id=row["id"], text=row["text"], priority=row["priority"])
            )
        written.append(read)
    await _insert_all(session, (ReportSection, sections), (Recommendation, recommendations))
    return written


async def create_report(
    session: AsyncSession, access: Access, *, state_code: str, content: ReportContent
) -> Written:
    """A new draft report (version 1) for a Member State."""
    state = await member_state(session, state_code)
    report = VisitReport(
        lineage_id=uuid.uuid4(),
        state_id=state.id,
        kind=content.kind.value,
        title=content.title,
        language=content.language,
        visit_start_date=content.visit_start,
        visit_end_date=content.visit_end,
        created_by=access.subject.user_id,
    )
    session.add(report)
    sections = await _write_sections(session, report, content)
    audit.record(
        session,
        access.audit,
        "report.create",
        object_type="report",
        object_id=report.id,
        details={"state": state.code, "version": 1},
    )
    return Written(report, sections)


async def draft_report(session: AsyncSession, access: Access, body: ReportCreate) -> ReportRead:
    """`create_report`, answered with the new draft in full."""
    written = await create_report(session, access, state_code=body.state, content=body)
    return await full_text(session, written.report, written.sections)


async def get_report(
    session: AsyncSession, access: Access, report_id: uuid.UUID, *, lock: bool = False
) -> VisitReport:
    """A report inside the caller's scope; outside it, 404 as if it did not exist.

    `lock`: for a write that depends on the status, so an edit or an upload cannot land
    on a version that is being adopted.
    """
    statement = readable_reports(access).where(col(VisitReport.id) == report_id)
    if lock:
        statement = statement.with_for_update()
    report = (await session.exec(statement)).first()
    if report is None:
        raise NotFoundError("No such report.")
    return report


async def update_draft(
    session: AsyncSession, access: Access, report_id: uuid.UUID, content: ReportContent
) -> Written:
    """Replace a draft's content; an adopted report is amended instead (409)."""
    report = await get_report(session, access, report_id, lock=True)
    if report.status != ReportStatus.DRAFT.value:
        raise ConflictError("An adopted report cannot be edited: amend it.")
    report.title, report.kind, report.language = content.title, content.kind.value, content.language
    report.visit_start_date, report.visit_end_date = content.visit_start, content.visit_end
    session.add(report)
    await session.exec(delete(ReportSection).where(col(ReportSection.report_id) == report.id))
    sections = await _write_sections(session, report, content)
    audit.record(session, access.audit, "report.update", object_type="report", object_id=report.id)
    return Written(report, sections)


async def update_report(
    session: AsyncSession, access: Access, report_id: uuid.UUID, content: ReportContent
) -> ReportRead:
    """`update_draft`, answered with the draft in full."""
    written = await update_draft(session, access, report_id, content)
    return await full_text(session, written.report, written.sections)


async def adopt(session: AsyncSession, access: Access, report_id: uuid.UUID) -> VisitReport:
    report = await get_report(session, access, report_id, lock=True)
    if report.status != ReportStatus.DRAFT.value:
        raise ConflictError("Only a draft can be adopted.")
    report.status = ReportStatus.ADOPTED.value
    report.adopted_at = clock.now()
    report.adopted_by = access.subject.user_id
    session.add(report)
    await session.flush()
    audit.record(
        session,
        access.audit,
        "report.adopt",
        object_type="report",
        object_id=report.id,
        details={"version": report.version},
    )
    return report


async def adopt_report(session: AsyncSession, access: Access, report_id: uuid.UUID) -> ReportRead:
    """`adopt`, answered with the adopted version in full."""
    return await full_text(session, await adopt(session, access, report_id))


# --- amendment: the latest adopted version, copied into a new draft ---------------------

# The id of each copied section by the id of the section it copies.
SectionIds = dict[uuid.UUID, uuid.UUID]


async def _amendable(session: AsyncSession, access: Access, report_id: uuid.UUID) -> VisitReport:
    """The version to amend: in scope (404), adopted and the latest of its lineage (409)."""
    report = await get_report(session, access, report_id)
    latest = (
        await session.exec(
            select(func.max(VisitReport.version)).where(
                col(VisitReport.lineage_id) == report.lineage_id
            )
        )
    ).one()
    if report.status != ReportStatus.ADOPTED.value or report.version != latest:
        raise ConflictError("Only the latest version, once adopted, can be amended.")
    return report


async def _next_version(session: AsyncSession, access: Access, report: VisitReport) -> VisitReport:
    """The new draft version's row, written (its content is copied next)."""
    amended = VisitReport(
        lineage_id=report.lineage_id,
        version=report.version + 1,
        state_id=report.state_id,
        kind=report.kind,
        title=report.title,
        language=report.language,
        visit_start_date=report.visit_start_date,
        visit_end_date=report.visit_end_date,
        created_by=access.subject.user_id,
    )
    session.add(amended)
    await session.flush()
    return amended


async def _copy_sections(
    session: AsyncSession, source: VisitReport, target: VisitReport
) -> SectionIds:
    """Copy the source's sections and their recommendations onto the target (two reads,
    two executemany INSERTs)."""
    sections = (
        await session.exec(
            select(ReportSection)
            .where(col(ReportSection.report_id) == source.id)
            .order_by(col(ReportSection.position))
        )
    ).all()
    moved: SectionIds = {section.id: uuid.uuid4() for section in sections}
    recommendations = (
        (
            await session.exec(
                select(Recommendation).where(col(Recommendation.section_id).in_(list(moved)))
            )
        ).all()
        if moved
        else []
    )
    await _insert_all(
        session,
        (
            ReportSection,
            [
                {
                    "id": moved[section.id],
                    "report_id": target.id,
                    "area": section.area,
                    "title": section.title,
                    "body": section.body,
                    "position": section.position,
                }
                for section in sections
            ],
        ),
        (
            Recommendation,
            [
                {
                    "id": uuid.uuid4(),
                    "section_id": moved[recommendation.section_id],
                    "text": recommendation.text,
                    "priority": recommendation.priority,
                    "position": recommendation.position,
                }
                for recommendation in recommendations
            ],
        ),
    )
    return moved


async def _copy_attachments(
    session: AsyncSession, source: VisitReport, target: VisitReport, moved: SectionIds
) -> None:
    """Attach the source's files to the target too (the content is stored once already),
    each to the copy of its section."""
    files = (
        await session.exec(select(Attachment).where(col(Attachment.report_id) == source.id))
    ).all()
    await _insert_all(
        session,
        (
            Attachment,
            [
                {
                    "id": uuid.uuid4(),
                    "report_id": target.id,
                    "section_id": moved.get(file.section_id) if file.section_id else None,
                    "filename": file.filename,
                    "media_type": file.media_type,
                    "size": file.size,
                    "sha256": file.sha256,
                    "uploaded_at": file.uploaded_at,
                    "uploaded_by": file.uploaded_by,
                }
                for file in files
            ],
        ),
    )


async def amend(session: AsyncSession, access: Access, report_id: uuid.UUID) -> VisitReport:
    """A new draft version of the latest adopted version; earlier versions stay as they are."""
    report = await _amendable(session, access, report_id)
    amended = await _next_version(session, access, report)
    moved = await _copy_sections(session, report, amended)
    await _copy_attachments(session, report, amended, moved)
    audit.record(
        session,
        access.audit,
        "report.amend",
        object_type="report",
        object_id=amended.id,
        details={"from": str(report.id), "version": amended.version},
    )
    return amended


async def amend_report(session: AsyncSession, access: Access, report_id: uuid.UUID) -> ReportRead:
    """`amend`, answered with the new draft version in full."""
    return await full_text(session, await amend(session, access, report_id))


async def attach_file(
    session: AsyncSession,
    access: Access,
    report_id: uuid.UUID,
    section_id: uuid.UUID | None,
    upload: BinaryIO,
    filename: str | None,
    max_bytes: int,
) -> AttachmentRead:
    """An uploaded file attached to a draft (`attachments.store`), its report row locked
    so the file cannot land on a version that is being adopted."""
    report = await get_report(session, access, report_id, lock=True)
    attachment = await attachments.store(
        session, access, report, section_id, upload, filename, max_bytes
    )
    return AttachmentRead.model_validate(attachment)


# --- reads -------------------------------------------------------------------------------


async def summaries(session: AsyncSession, reports: Sequence[VisitReport]) -> list[ReportSummary]:
    states = await organizations.organizations_by_id(session, {r.state_id for r in reports})
    return [_summary(report, states[report.state_id]) for report in reports]


def _summary(report: VisitReport, state: Organization) -> ReportSummary:
    return ReportSummary(
        id=report.id,
        lineage_id=report.lineage_id,
        version=report.version,
        state=StateRef.of(state),
        title=report.title,
        kind=report.kind,
        language=report.language,
        visit_start=report.visit_start_date,
        visit_end=report.visit_end_date,
        status=report.status,
        created_at=report.created_at,
        adopted_at=report.adopted_at,
    )


async def _sections_of(session: AsyncSession, report: VisitReport) -> list[SectionRead]:
    rows = (
        await session.exec(
            select(ReportSection)
            .where(col(ReportSection.report_id) == report.id)
            .order_by(col(ReportSection.position))
        )
    ).all()
    recommendations = (
        (
            await session.exec(
                select(Recommendation)
                .where(col(Recommendation.section_id).in_([s.id for s in rows]))
                .order_by(col(Recommendation.position))
            )
        ).all()
        if rows
        else []
    )
    by_section: dict[uuid.UUID, list[RecommendationRead]] = {s.id: [] for s in rows}
    for recommendation in recommendations:
        by_section[recommendation.section_id].append(
            RecommendationRead(
                id=recommendation.id, text=recommendation.text, priority=recommendation.priority
            )
        )
    return [
        SectionRead(
            id=s.id, area=s.area, title=s.title, body=s.body, recommendations=by_section[s.id]
        )
        for s in rows
    ]


async def full_text(
    session: AsyncSession, report: VisitReport, sections: list[SectionRead] | None = None
) -> ReportRead:
    """The whole report: every section and recommendation (only for callers in scope).

    `sections`: as `Written` gives them, when the caller has just written them.
    """
    state = await session.get(Organization, report.state_id)
    assert state is not None
    if sections is None:
        sections = await _sections_of(session, report)
    files = (
        await session.exec(
            select(Attachment)
            .where(col(Attachment.report_id) == report.id)
            .order_by(col(Attachment.uploaded_at), col(Attachment.id))
        )
    ).all()
    return ReportRead(
        **_summary(report, state).model_dump(),
        sections=sections,
        attachments=[AttachmentRead.model_validate(file) for file in files],
    )


@dataclass(frozen=True)
class ReportFilters:
    """Which versions a list shows (None: any). `state` is a Member State's code,
    `year` the year the visit started, `lineage` the versions of one report."""

    state: str | None = None
    status: ReportStatus | None = None
    kind: ReportKind | None = None
    year: int | None = None
    lineage: uuid.UUID | None = None


async def list_reports(
    session: AsyncSession, access: Access, filters: ReportFilters, page: PageRequest
) -> Page[ReportSummary]:
    """Every version in the caller's scope that the filters let through, newest visit
    first, one page at a time; audited as `report.list` with the ids shown."""
    statement = readable_reports(access)
    if filters.lineage is not None:
        statement = statement.where(col(VisitReport.lineage_id) == filters.lineage)
    if filters.state is not None:
        statement = statement.join(
            Organization, col(Organization.id) == col(VisitReport.state_id)
        ).where(col(Organization.code) == filters.state.upper())
    if filters.status is not None:
        statement = statement.where(col(VisitReport.status) == filters.status.value)
    if filters.kind is not None:
        statement = statement.where(col(VisitReport.kind) == filters.kind.value)
    if filters.year is not None:
        statement = statement.where(
            extract("year", col(VisitReport.visit_start_date)) == filters.year
        )
    return await audited_page(
        session,
        access,
        statement,
        order=[VisitReport.visit_start_date, VisitReport.id],
        page=page,
        read_models=summaries,
    )


async def read_report(session: AsyncSession, access: Access, report_id: uuid.UUID) -> ReportRead:
    """A report in full; outside the caller's scope, 404. Every read is audited."""
    report = await get_report(session, access, report_id)
    audit.record(
        session, access.audit, "report.read", object_type="report", object_id=report.id, read=True
    )
    return await full_text(session, report)
