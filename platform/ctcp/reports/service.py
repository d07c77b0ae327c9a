"""Visit-report rules: who sees which report, drafting, adoption and amendment."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, false, func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, NotFoundError, ValidationError
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.reports.models import (
    Attachment,
    Recommendation,
    ReportSection,
    ReportStatus,
    VisitReport,
)
from ctcp.reports.schemas import (
    AttachmentRead,
    RecommendationRead,
    ReportContent,
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
    await session.flush()  # the report row first: the sections point at it
    connection = await session.connection()
    if sections:
        await connection.execute(insert(ReportSection), sections)
    if recommendations:
        await connection.execute(insert(Recommendation), recommendations)
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


async def amend(session: AsyncSession, access: Access, report_id: uuid.UUID) -> VisitReport:
    """A new draft version of the latest adopted version; earlier versions stay as they are."""
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
    sections = (
        await session.exec(
            select(ReportSection)
            .where(col(ReportSection.report_id) == report.id)
            .order_by(col(ReportSection.position))
        )
    ).all()
    moved: dict[uuid.UUID, uuid.UUID] = {}
    for section in sections:
        copy = ReportSection(
            report_id=amended.id,
            area=section.area,
            title=section.title,
            body=section.body,
            position=section.position,
        )
        session.add(copy)
        await session.flush()  # the section before the rows that point at it
        moved[section.id] = copy.id
        for recommendation in (
            await session.exec(
                select(Recommendation).where(col(Recommendation.section_id) == section.id)
            )
        ).all():
            session.add(
                Recommendation(
                    section_id=copy.id,
                    text=recommendation.text,
                    priority=recommendation.priority,
                    position=recommendation.position,
                )
            )
    await session.flush()
    for attachment in (
        await session.exec(select(Attachment).where(col(Attachment.report_id) == report.id))
    ).all():
        session.add(
            Attachment(
                report_id=amended.id,
                section_id=moved.get(attachment.section_id) if attachment.section_id else None,
                filename=attachment.filename,
                media_type=attachment.media_type,
                size=attachment.size,
                sha256=attachment.sha256,
                uploaded_at=attachment.uploaded_at,
                uploaded_by=attachment.uploaded_by,
            )
        )
    await session.flush()
    audit.record(
        session,
        access.audit,
        "report.amend",
        object_type="report",
        object_id=amended.id,
        details={"from": str(report.id), "version": amended.version},
    )
    return amended


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
