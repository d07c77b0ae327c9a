"""Consent rules and publications: nothing outside the current consent is ever served."""

import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, false, or_, update
from sqlalchemy import exists as sa_exists
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.consent import markings
from ctcp.consent.models import (
    AUDIENCE_RANK,
    Audience,
    ConsentEvent,
    ConsentScope,
    Publication,
    PublicationAttachment,
    PublicationSection,
)
from ctcp.consent.schemas import (
    ConsentDecision,
    ConsentRead,
    ConsentState,
    PublicationRead,
    PublicationSectionRead,
)
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest, keyset, page_of
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.reports import attachments as report_attachments
from ctcp.reports import service as reports
from ctcp.reports.models import Attachment, ReportSection, ReportStatus, ThematicArea, VisitReport

# Which audiences a reader of each kind of organization belongs to.
AUDIENCES_OF = {
    OrganizationKind.MEMBER_STATE.value: (Audience.MEMBER_STATES, Audience.PUBLIC),
    OrganizationKind.COMPACT_ENTITY.value: (
        Audience.COMPACT,
        Audience.MEMBER_STATES,
        Audience.PUBLIC,
    ),
    OrganizationKind.SECRETARIAT.value: (Audience.COMPACT, Audience.MEMBER_STATES, Audience.PUBLIC),
}


def unexpired(expires_at: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: no expiry, or a later one: expiry takes effect at once, without waiting for a job."""
    return or_(expires_at.is_(None), expires_at > now)


def live(now: datetime) -> ColumnElement[bool]:
    """A publication neither revoked nor expired."""
    return col(Publication.revoked_at).is_(None) & unexpired(col(Publication.expires_at), now)


def readable_publications(access: Access) -> SelectOfScalar[Publication]:
    """The one place a publication-read scope becomes SQL."""
    statement = select(Publication).where(live(clock.now()))
    if DataScope.ALL in access.scopes:
        return statement
    allowed = []
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(col(Publication.state_id) == access.organization.id)
    if DataScope.CONSENTED in access.scopes:
        audience = col(Publication.audience)
        # Equalities, not IN: an IN list is re-rendered into the SQL on every execution.
        allowed.extend(audience == a.value for a in AUDIENCES_OF.get(access.organization.kind, ()))
    return statement.where(or_(*allowed)) if allowed else statement.where(false())


def public_publications() -> SelectOfScalar[Publication]:
    return select(Publication).where(
        live(clock.now()), col(Publication.audience) == Audience.PUBLIC.value
    )


async def history(session: AsyncSession, report_id: uuid.UUID) -> list[ConsentEvent]:
    return list(
        (
            await session.exec(
                select(ConsentEvent)
                .where(col(ConsentEvent.report_id) == report_id)
                .order_by(col(ConsentEvent.sequence))
            )
        ).all()
    )


class _Expiring(Protocol):
    expires_at: datetime | None


class _Sequenced(Protocol):
    sequence: int


Decision = TypeVar("Decision", bound=_Expiring)


def current_of(events: Sequence[Decision], now: datetime) -> Decision | None:
    """The latest event, unless it has expired (then nothing is consented)."""
    if not events:
        return None
    latest = events[-1]
    if latest.expires_at is not None and latest.expires_at <= now:
        return None
    return latest


def as_read(event: ConsentEvent) -> ConsentRead:
    return ConsentRead(
        id=event.id,
        sequence=event.sequence,
        scope=event.scope,
        sections=[uuid.UUID(s) for s in event.section_ids],
        audience=event.audience,
        share_needs=event.share_needs,
        reference=event.reference,
        reason=event.reason,
        withdrawal=event.withdrawal,
        effective_at=event.effective_at,
        expires_at=event.expires_at,
        recorded_at=event.recorded_at,
        recorded_by=event.recorded_by,
    )


async def consent_report(
    session: AsyncSession, access: Access, report_id: uuid.UUID, *, lock: bool = False
) -> VisitReport:
    """The report, inside the caller's consent scope (404 outside), optionally locked."""
    statement = reports.readable_reports(access).where(col(VisitReport.id) == report_id)
    if lock:
        # Serializes consent decisions on one report: the history stays ordered.
        statement = statement.with_for_update()
    report = (await session.exec(statement)).first()
    if report is None:
        raise NotFoundError("No such report.")
    return report


async def read_consent(session: AsyncSession, access: Access, report_id: uuid.UUID) -> ConsentState:
    """The report's current consent and its history, inside the caller's consent scope
    (404 outside); audited as `consent.read`."""
    report = await consent_report(session, access, report_id)
    events = await history(session, report.id)
    current = current_of(events, clock.now())
    audit.record(
        session, access.audit, "consent.read", object_type="report", object_id=report.id, read=True
    )
    return ConsentState(
        current=as_read(current) if current else None,
        history=[as_read(e) for e in events],
    )


def _sections_of(scope: str, section_ids: Sequence[str], all_ids: set[str]) -> set[str]:
    if scope == ConsentScope.FULL.value:
        return set(all_ids)
    if scope == ConsentScope.PARTIAL.value:
        return set(section_ids)
    return set()


def check_not_stale(events: Sequence[_Sequenced], after_sequence: int | None) -> None:
    """409 when the decider saw an older history than there is: never override unseen news."""
    latest = events[-1].sequence if events else 0
    if after_sequence is not None and after_sequence != latest:
        raise ConflictError(
            f"Consent changed since you read it (now at decision {latest}): reload and decide.",
            extra={"current_sequence": latest},
        )


def check_broadening(
    *, may_broaden: bool, after_sequence: int | None, reference: str | None, reference_rule: str
) -> None:
    """What a decision that broadens must have: a consent officer as its author, the latest
    decision that author saw (so it never overrides a withdrawal it did not see), and the
    reference of the State's communication."""
    if not may_broaden:
        raise ForbiddenError("A State's focal point may only narrow or withdraw consent.")
    if after_sequence is None:
        raise ValidationError(
            "A decision that broadens names the latest decision you saw "
            "(after_sequence; 0 when there is none).",
            loc=["body", "after_sequence"],
        )
    if not reference:
        raise ValidationError(reference_rule, loc=["body", "reference"])


def later_expiry(new: datetime | None, current: datetime | None) -> bool:
    """Whether `new` lets consent run longer than `current` (None: no expiry)."""
    return current is not None and (new is None or new > current)


def _broadens(
    decision: ConsentDecision, chosen: set[str], current: ConsentEvent | None, all_ids: set[str]
) -> bool:
    """Whether the decision gives anything the current consent does not: a section, a wider
    audience, needs sharing, or a longer life."""
    if decision.scope is ConsentScope.NONE:
        return False
    if current is None or current.scope == ConsentScope.NONE.value:
        return True
    before = _sections_of(current.scope, current.section_ids, all_ids)
    # Compare what each decision covers, not what it names: `full` names no section.
    after = _sections_of(decision.scope.value, sorted(chosen), all_ids)
    wider_audience = (
        AUDIENCE_RANK[decision.audience]
        > AUDIENCE_RANK[Audience(current.audience or Audience.COMPACT.value)]
    )
    return (
        bool(after - before)
        or wider_audience
        or (decision.share_needs and not current.share_needs)
        or later_expiry(decision.expires_at, current.expires_at)
    )


@dataclass(frozen=True)
class CheckedDecision:
    """A decision that passed every rule, and what it was checked against."""

    report: VisitReport
    sections: list[ReportSection]
    chosen: set[str]
    events: list[ConsentEvent]
    current: ConsentEvent | None
    now: datetime
    published: list[ReportSection]  # the sections its publication holds, in order
    attachments: list[Attachment]  # the files its publication carries


def publication_sections(
    sections: Sequence[ReportSection], scope: str, section_ids: Sequence[str]
) -> list[ReportSection]:
    """Exactly the sections a publication of this decision holds, in the report's order.

    The one place this is decided: recording a decision and previewing it both use it.
    """
    covered = _sections_of(scope, section_ids, {str(section.id) for section in sections})
    return sorted(
        (section for section in sections if str(section.id) in covered),
        key=lambda section: section.position,
    )


def covers_attachment(
    attachment: Attachment, section_ids: Container[uuid.UUID], *, full: bool
) -> bool:
    """Whether a publication of these sections carries the attachment: a section's
    attachment goes with that section, an attachment of the whole report only with full
    consent. Recording (via `published_attachments`) and previewing both use it."""
    if attachment.section_id is not None:
        return attachment.section_id in section_ids
    return full


def attachment_summary(attachment: Attachment) -> dict[str, str]:
    return {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "media_type": attachment.media_type,
        "size": str(attachment.size),
        "sha256": attachment.sha256,
    }


async def carried_attachments(
    session: AsyncSession, report: VisitReport, sections: Sequence[ReportSection], *, full: bool
) -> list[Attachment]:
    """The report's files a publication of these sections carries, as they are now: what
    recording the decision fixes into the publication, and what its preview lists."""
    files = (
        await session.exec(
            select(Attachment)
            .where(col(Attachment.report_id) == report.id)
            .order_by(col(Attachment.filename), col(Attachment.id))
        )
    ).all()
    covered = {section.id for section in sections}
    return [attachment for attachment in files if covers_attachment(attachment, covered, full=full)]


async def _report_sections(session: AsyncSession, report: VisitReport) -> list[ReportSection]:
    return list(
        (
            await session.exec(
                select(ReportSection)
                .where(col(ReportSection.report_id) == report.id)
                .order_by(col(ReportSection.position))
            )
        ).all()
    )


async def check_decision(
    session: AsyncSession,
    access: Access,
    report_id: uuid.UUID,
    decision: ConsentDecision,
    *,
    may_broaden: bool,
    lock: bool,
) -> CheckedDecision:
    """Every rule a decision must pass before it is recorded (or previewed); writes nothing."""
    now = clock.now()
    report = await consent_report(session, access, report_id, lock=lock)
    if report.status != ReportStatus.ADOPTED.value:
        raise ConflictError("Consent applies to an adopted report version.")
    sections = await _report_sections(session, report)
    all_ids = {str(section.id) for section in sections}
    chosen = {str(s) for s in decision.sections}
    if decision.scope is ConsentScope.PARTIAL and not chosen:
        raise ValidationError(
            "Partial consent names at least one section.", loc=["body", "sections"]
        )
    if decision.scope is not ConsentScope.PARTIAL and chosen:
        raise ValidationError("Only partial consent names sections.", loc=["body", "sections"])
    if not chosen <= all_ids:
        raise ValidationError(
            "Every section must belong to this report version.", loc=["body", "sections"]
        )
    if decision.expires_at is not None and decision.expires_at <= now:
        raise ValidationError("The expiry must be in the future.", loc=["body", "expires_at"])
    events = await history(session, report.id)
    check_not_stale(events, decision.after_sequence)
    current = current_of(events, now)
    published = publication_sections(sections, decision.scope.value, sorted(chosen))
    covered = await carried_attachments(
        session, report, published, full=decision.scope is ConsentScope.FULL
    )
    carried_before = await _carried_by_live_publication(session, report.id, now)
    new_files = any((a.id, a.sha256) not in carried_before for a in covered)
    # A file the live publication does not carry (one that reached the report before
    # files were fixed at consent) is published only by a decision that broadens; any
    # other decision, a State's narrowing above all, carries no file it did not carry.
    if _broadens(decision, chosen, current, all_ids) or (may_broaden and new_files):
        check_broadening(
            may_broaden=may_broaden,
            after_sequence=decision.after_sequence,
            reference=decision.reference,
            reference_rule="Broadening consent needs the reference of the State's communication.",
        )
    else:
        covered = [a for a in covered if (a.id, a.sha256) in carried_before]
    return CheckedDecision(report, sections, chosen, events, current, now, published, covered)


async def _carried_by_live_publication(
    session: AsyncSession, report_id: uuid.UUID, now: datetime
) -> set[tuple[uuid.UUID, str]]:
    """The files (id and content) the report's live publication carries now (none without
    one): a file whose content changed since is a new file."""
    rows = await session.exec(
        select(PublicationAttachment.attachment_id, PublicationAttachment.sha256)
        .join(Publication, col(Publication.id) == col(PublicationAttachment.publication_id))
        .where(col(Publication.report_id) == report_id, live(now))
    )
    return set(rows.all())


@dataclass(frozen=True)
class PublicationPreview:
    """What recording a decision would publish: nothing is written to produce it."""

    report: VisitReport
    scope: str
    audience: str | None
    share_needs: bool
    expires_at: datetime | None
    sections: list[PublicationSectionRead]
    attachments: list[dict[str, str]]


async def preview(
    session: AsyncSession,
    access: Access,
    report_id: uuid.UUID,
    decision: ConsentDecision,
    *,
    may_broaden: bool,
) -> PublicationPreview:
    """The publication a decision would make, checked by the same rules as `record`."""
    checked = await check_decision(
        session, access, report_id, decision, may_broaden=may_broaden, lock=False
    )
    chosen = checked.published
    carried = [attachment_summary(attachment) for attachment in checked.attachments]
    audit.record(
        session,
        access.audit,
        "consent.preview",
        object_type="report",
        object_id=checked.report.id,
        details={"scope": decision.scope.value, "sections": [str(s.id) for s in chosen]},
        read=True,
    )
    return PublicationPreview(
        report=checked.report,
        scope=decision.scope.value,
        audience=None if decision.scope is ConsentScope.NONE else decision.audience.value,
        share_needs=decision.share_needs and decision.scope is not ConsentScope.NONE,
        expires_at=decision.expires_at,
        sections=[
            PublicationSectionRead(id=s.id, area=s.area, title=s.title, body=s.body) for s in chosen
        ],
        attachments=carried,
    )


async def record(
    session: AsyncSession,
    access: Access,
    report_id: uuid.UUID,
    decision: ConsentDecision,
    *,
    may_broaden: bool,
) -> ConsentRead:
    """Record a decision; revoke what it no longer covers and publish what it allows."""
    checked = await check_decision(
        session, access, report_id, decision, may_broaden=may_broaden, lock=True
    )
    report, events, now = checked.report, checked.events, checked.now
    event = ConsentEvent(
        report_id=report.id,
        sequence=(events[-1].sequence + 1) if events else 1,
        scope=decision.scope.value,
        section_ids=sorted(checked.chosen),
        audience=None if decision.scope is ConsentScope.NONE else decision.audience.value,
        share_needs=decision.share_needs and decision.scope is not ConsentScope.NONE,
        reference=decision.reference,
        effective_at=now,
        expires_at=decision.expires_at,
        recorded_at=now,
        recorded_by=access.subject.user_id,
        on_behalf_of=report.state_id,
    )
    await _apply(
        session, access, report, event, checked.current, checked.published, checked.attachments
    )
    return as_read(event)


async def withdraw(
    session: AsyncSession,
    access: Access,
    report_id: uuid.UUID,
    reason: str,
) -> ConsentRead:
    """Withdraw all consent: every publication of the report is revoked in this transaction.

    Never refused as stale: a withdrawal is the narrowest decision there is, so no
    decision recorded meanwhile can make it wrong, and losing it would leak.
    """
    now = clock.now()
    report = await consent_report(session, access, report_id, lock=True)
    events = await history(session, report.id)
    event = ConsentEvent(
        report_id=report.id,
        sequence=(events[-1].sequence + 1) if events else 1,
        scope=ConsentScope.NONE.value,
        section_ids=[],
        audience=None,
        share_needs=False,
        reason=reason,
        withdrawal=True,
        effective_at=now,
        recorded_at=now,
        recorded_by=access.subject.user_id,
        on_behalf_of=report.state_id,
    )
    await _apply(session, access, report, event, current_of(events, now), [], [])
    return as_read(event)


async def _apply(
    session: AsyncSession,
    access: Access,
    report: VisitReport,
    event: ConsentEvent,
    before: ConsentEvent | None,
    sections: Sequence[ReportSection],
    carried: Sequence[Attachment],
) -> None:
    """Record the event, revoke the report's publications, and publish exactly `sections`
    and `carried` (as `check_decision` decided them) for the event's audience."""
    session.add(event)
    await session.flush()
    live_before = select(col(Publication.id)).where(
        col(Publication.report_id) == report.id, col(Publication.revoked_at).is_(None)
    )
    feed.touch(session, "publication", (await session.exec(live_before)).all())
    feed.touch_state(session, report.state_id)
    revoked = await session.exec(
        update(Publication)
        .where(col(Publication.report_id) == report.id, col(Publication.revoked_at).is_(None))
        .values(revoked_at=event.recorded_at)
    )
    published: uuid.UUID | None = None
    if sections:
        publication = Publication(
            report_id=report.id,
            consent_event_id=event.id,
            state_id=report.state_id,
            audience=event.audience or Audience.COMPACT.value,
            title=report.title,
            published_at=event.recorded_at,
            expires_at=event.expires_at,
        )
        session.add(publication)
        await session.flush()
        feed.touch(session, "publication", [publication.id])
        session.add_all(
            [
                PublicationSection(
                    publication_id=publication.id,
                    section_id=section.id,
                    area=section.area,
                    title=section.title,
                    body=section.body,
                    position=section.position,
                )
                for section in sections
            ]
            + [
                PublicationAttachment(
                    publication_id=publication.id,
                    attachment_id=attachment.id,
                    filename=attachment.filename,
                    media_type=attachment.media_type,
                    size=attachment.size,
                    sha256=attachment.sha256,
                )
                for attachment in carried
            ]
        )
        await session.flush()
        published = publication.id
    audit.record(
        session,
        access.audit,
        "consent.withdraw" if event.withdrawal else "consent.record",
        object_type="report",
        object_id=report.id,
        details={
            "before": as_read(before).model_dump(mode="json") if before else None,
            "after": as_read(event).model_dump(mode="json"),
            "revoked_publications": revoked.rowcount,
            "publication": str(published) if published else None,
            "attachments": [
                {"id": str(attachment.id), "sha256": attachment.sha256} for attachment in carried
            ],
        },
    )


async def read_one(
    session: AsyncSession, access: Access | None, publication_id: uuid.UUID
) -> PublicationRead:
    """One publication in `access`'s scope (None: the public one), as `read_model` gives
    it: 404 outside it.

    One query of plain rows (the publication, its State's code and its sections) on
    every read; attachments, which few publications carry, only when it carries some. The
    scope's WHERE clause is carried into that query, which is why both scope builders
    select from the publications table alone, without joins (a test holds them to it).
    """
    statement = public_publications() if access is None else readable_publications(access)
    section = PublicationSection.__table__  # type: ignore[attr-defined]
    query = (
        sa_select(
            col(Publication.id),
            col(Publication.report_id),
            col(Publication.title),
            col(Publication.audience),
            col(Publication.published_at),
            col(Publication.expires_at),
            col(Organization.code),
            sa_exists().where(col(PublicationAttachment.publication_id) == col(Publication.id)),
            section.c.section_id,
            section.c.area,
            section.c.title,
            section.c.body,
        )
        .join(Organization, col(Organization.id) == col(Publication.state_id))
        .outerjoin(section, section.c.publication_id == col(Publication.id))
        .where(col(Publication.id) == publication_id)
        .order_by(section.c.position)
    )
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    rows = (await (await session.connection()).execute(query)).all()
    if not rows:
        raise NotFoundError("No such publication.")
    first = rows[0]
    attachments: list[dict[str, str]] = []
    if first[7]:
        attachments = (await published_attachments(session, [publication_id]))[publication_id]
    return PublicationRead(
        id=first[0],
        report_id=first[1],
        state=first[6],
        title=first[2],
        audience=first[3],
        tlp=markings.tlp_of(first[3]),
        published_at=first[4],
        expires_at=first[5],
        sections=[
            PublicationSectionRead(id=row[8], area=row[9], title=row[10], body=row[11])
            for row in rows
            if row[8] is not None
        ],
        attachments=attachments,
    )


async def read_model(
    session: AsyncSession, publications: Sequence[Publication]
) -> list[PublicationRead]:
    """Publications with their snapshot sections: consented text only, never the report's."""
    if not publications:
        return []
    ids = [p.id for p in publications]
    publication = col(PublicationSection.publication_id)
    connection = await session.connection()  # five plain columns: no ORM objects to build
    rows = (
        await connection.execute(
            sa_select(
                col(PublicationSection.publication_id),
                col(PublicationSection.section_id),
                col(PublicationSection.area),
                col(PublicationSection.title),
                col(PublicationSection.body),
            )
            .where(publication == ids[0] if len(ids) == 1 else publication.in_(ids))
            .order_by(col(PublicationSection.position))
        )
    ).all()
    states = await organizations.organization_codes(session, {p.state_id for p in publications})
    by_publication: dict[uuid.UUID, list[PublicationSectionRead]] = {i: [] for i in ids}
    for publication_id, section_id, area, title, body in rows:
        by_publication[publication_id].append(
            PublicationSectionRead(id=section_id, area=area, title=title, body=body)
        )
    attachments = await published_attachments(session, ids)
    return [
        PublicationRead(
            id=p.id,
            report_id=p.report_id,
            state=states[p.state_id],
            title=p.title,
            audience=p.audience,
            tlp=markings.tlp_of(p.audience),
            published_at=p.published_at,
            expires_at=p.expires_at,
            sections=by_publication[p.id],
            attachments=attachments[p.id],
        )
        for p in publications
    ]


@dataclass(frozen=True)
class PublicationFilters:
    """What a list of publications is narrowed to (None: no filter): a State by its code,
    a thematic area (the publications holding a section of it), a year of publication."""

    state: str | None = None
    area: ThematicArea | None = None
    year: int | None = None


def _filtered(
    statement: SelectOfScalar[Publication], filters: PublicationFilters
) -> SelectOfScalar[Publication]:
    """`statement` (already scoped) narrowed to the filters."""
    query = statement
    if filters.state is not None:
        query = query.join(
            Organization,
            col(Organization.id) == col(Publication.state_id),
        ).where(col(Organization.code) == filters.state.upper())
    if filters.area is not None:
        query = query.where(
            col(Publication.id).in_(
                select(PublicationSection.publication_id).where(
                    col(PublicationSection.area) == filters.area.value
                )
            )
        )
    if filters.year is not None:
        start = datetime(filters.year, 1, 1, tzinfo=UTC)
        query = query.where(
            col(Publication.published_at) >= start,
            col(Publication.published_at) < start.replace(year=filters.year + 1),
        )
    return query


async def _read_page(session: AsyncSession, shown: Page[Publication]) -> Page[PublicationRead]:
    return Page[PublicationRead](
        items=await read_model(session, shown.items), next_cursor=shown.next_cursor
    )


async def list_publications(
    session: AsyncSession, access: Access, filters: PublicationFilters, page: PageRequest
) -> Page[PublicationRead]:
    """The live publications in the caller's scope, newest first; audited as
    `publication.list` with the ids shown."""
    statement = _filtered(readable_publications(access), filters)
    return await audited_page(
        session,
        access,
        statement,
        order=[Publication.published_at, Publication.id],
        page=page,
        read_models=read_model,
    )


async def list_public_publications(
    session: AsyncSession, filters: PublicationFilters, page: PageRequest
) -> Page[PublicationRead]:
    """The live public publications, newest first: read without signing in, so unaudited."""
    statement = _filtered(public_publications(), filters)
    order = [col(Publication.published_at), col(Publication.id)]
    rows = (
        await session.exec(
            keyset(statement, order=order, descending=True, limit=page.limit, cursor=page.cursor)
        )
    ).all()
    shown = page_of(rows, limit=page.limit, key=lambda p: [p.published_at, p.id], item=lambda p: p)
    return await _read_page(session, shown)


async def read_publication(
    session: AsyncSession, access: Access, publication_id: uuid.UUID
) -> PublicationRead:
    """One publication in the caller's scope (404 outside); audited as `publication.read`."""
    publication = await read_one(session, access, publication_id)
    audit.record(
        session,
        access.audit,
        "publication.read",
        object_type="publication",
        object_id=publication.id,
        read=True,
    )
    return publication


async def attachment_readable(
    session: AsyncSession,
    *,
    attachment: Attachment,
    report_access: Access | None,
    publication_access: Access,
) -> bool:
    """Whether the caller may download: in scope of the full report, or carried by a live
    publication it may read (checked in SQL; the publication fixed the file's id and
    content when its consent was recorded)."""
    if report_access is not None:
        in_scope = (
            await session.exec(
                reports.readable_reports(report_access).where(
                    col(VisitReport.id) == attachment.report_id
                )
            )
        ).first()
        if in_scope is not None:
            return True
    statement = (
        readable_publications(publication_access)
        .join(
            PublicationAttachment,
            col(PublicationAttachment.publication_id) == col(Publication.id),
        )
        .where(
            col(PublicationAttachment.attachment_id) == attachment.id,
            col(PublicationAttachment.sha256) == attachment.sha256,
        )
    )
    return (await session.exec(statement)).first() is not None


async def read_attachment(
    session: AsyncSession,
    attachment_id: uuid.UUID,
    *,
    report_access: Access | None,
    publication_access: Access,
) -> Attachment:
    """An attachment the caller may download (see `attachment_readable`; 404 otherwise),
    audited as `attachment.read`."""
    attachment = await report_attachments.by_id(session, attachment_id)
    if not await attachment_readable(
        session,
        attachment=attachment,
        report_access=report_access,
        publication_access=publication_access,
    ):
        raise NotFoundError("No such attachment.")
    audit.record(
        session,
        publication_access.audit,
        "attachment.read",
        object_type="attachment",
        object_id=attachment.id,
        read=True,
    )
    return attachment


async def published_attachments(
    session: AsyncSession, publication_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, str]]]:
    """Per publication, the attachments it carries: those fixed when its consent was
    recorded, never the report's files as they are now."""
    result: dict[uuid.UUID, list[dict[str, str]]] = {i: [] for i in publication_ids}
    if not publication_ids:
        return result
    carried = col(PublicationAttachment.publication_id)
    connection = await session.connection()
    rows = (
        await connection.execute(
            sa_select(
                carried,
                col(PublicationAttachment.attachment_id),
                col(PublicationAttachment.filename),
                col(PublicationAttachment.media_type),
                col(PublicationAttachment.size),
                col(PublicationAttachment.sha256),
            )
            .where(
                carried == publication_ids[0]
                if len(publication_ids) == 1
                else carried.in_(publication_ids)
            )
            .order_by(col(PublicationAttachment.filename), col(PublicationAttachment.attachment_id))
        )
    ).all()
    for publication_id, attachment_id, filename, media_type, size, sha256 in rows:
        result[publication_id].append(
            {
                "id": str(attachment_id),
                "filename": filename,
                "media_type": media_type,
                "size": str(size),
                "sha256": sha256,
            }
        )
    return result
