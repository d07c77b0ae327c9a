"""Needs: who sees which, recording and updating them, and matching suggestions."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, false, func, or_, true
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.assistance.models import (
    AssistanceRequestNeed,
    CapacityConsultation,
    Need,
    NeedSource,
    NeedStatus,
    Offer,
    OfferStatus,
)
from ctcp.assistance.schemas import NeedCreate, NeedRead, NeedUpdate, OrganizationRef, Suggestion
from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.consent import markings, needs_sharing
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.errors import NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization
from ctcp.planning import service as planning
from ctcp.planning.models import AT_WORK, Activity
from ctcp.reports import service as reports
from ctcp.reports.models import (
    Priority,
    Recommendation,
    ReportSection,
    ReportStatus,
    ThematicArea,
    VisitReport,
)
from ctcp.reports.schemas import StateRef

MAX_SUGGESTIONS = 10


@dataclass(frozen=True)
class NeedFilters:
    """What a reader narrows the list of needs to; None filters nothing."""

    state: str | None = None  # a State's code, in any case
    area: ThematicArea | None = None
    status: NeedStatus | None = None
    priority: Priority | None = None


def shared_now(now: datetime) -> ColumnElement[bool]:
    """SQL: the need is shared with the Compact now (the `consented` need scope)."""
    return needs_sharing.shared(col(Need.state_id), col(Need.report_id), col(Need.section_id), now)


def need_scope(access: Access, now: datetime) -> ColumnElement[bool]:
    """The one place a need-read scope becomes SQL (a condition on `assistance_needs`):
    own State, shared needs, or all. The coordination matrix counts needs by it too."""
    if DataScope.ALL in access.scopes:
        return true()
    allowed = []
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(col(Need.state_id) == access.organization.id)
    if DataScope.CONSENTED in access.scopes and needs_sharing.readers_of_shared_needs(
        access.organization
    ):
        allowed.append(shared_now(now))
    return or_(*allowed) if allowed else false()


def readable_needs(access: Access) -> SelectOfScalar[Need]:
    statement = select(Need)
    if DataScope.ALL in access.scopes:
        return statement
    return statement.where(need_scope(access, clock.now()))


async def get_need(session: AsyncSession, access: Access, need_id: uuid.UUID) -> Need:
    """A need inside the caller's scope; outside it, 404 as if it did not exist."""
    need = (await session.exec(readable_needs(access).where(col(Need.id) == need_id))).first()
    if need is None:
        raise NotFoundError("No such need.")
    return need


async def list_needs(
    session: AsyncSession, access: Access, filters: NeedFilters, page: PageRequest
) -> Page[NeedRead]:
    """One page of the readable needs, newest first, audited as `need.list`."""
    statement = readable_needs(access)
    if filters.state is not None:
        statement = statement.join(Organization, col(Organization.id) == col(Need.state_id)).where(
            col(Organization.code) == filters.state.upper()
        )
    if filters.area is not None:
        statement = statement.where(col(Need.area) == filters.area.value)
    if filters.status is not None:
        statement = statement.where(col(Need.status) == filters.status.value)
    if filters.priority is not None:
        statement = statement.where(col(Need.priority) == filters.priority.value)
    return await audited_page(
        session,
        access,
        statement,
        order=[Need.created_at, Need.id],
        page=page,
        read_models=read_models,
    )


async def read_need(session: AsyncSession, access: Access, need_id: uuid.UUID) -> NeedRead:
    """A need inside the caller's scope (404 outside), audited as `need.read`."""
    need = await get_need(session, access, need_id)
    audit.record(
        session, access.audit, "need.read", object_type="need", object_id=need.id, read=True
    )
    return await _read_model(session, need)


async def _recommendation_source(
    session: AsyncSession, recommendation_id: uuid.UUID, state: Organization
) -> tuple[VisitReport, ReportSection]:
    row = (
        await session.exec(
            select(VisitReport, ReportSection)
            .join(ReportSection, col(ReportSection.report_id) == col(VisitReport.id))
            .join(Recommendation, col(Recommendation.section_id) == col(ReportSection.id))
            .where(col(Recommendation.id) == recommendation_id)
        )
    ).first()
    if row is None or row[0].state_id != state.id:
        raise ValidationError(
            "No such recommendation in this State's reports.", loc=["body", "recommendation_id"]
        )
    if row[0].status != ReportStatus.ADOPTED.value:
        # A draft's sections are replaced on every edit: only an adopted version is a source.
        raise ValidationError(
            "A need comes from a recommendation of an adopted report.",
            loc=["body", "recommendation_id"],
        )
    return row[0], row[1]


async def create_need(session: AsyncSession, access: Access, body: NeedCreate) -> Need:
    """Record a need for a State, linked to the recommendation or consultation it comes from."""
    state = await reports.member_state(session, body.state)
    area = body.area.value if body.area else None
    report_id: uuid.UUID | None = None
    section_id: uuid.UUID | None = None
    if body.source is NeedSource.RECOMMENDATION and body.recommendation_id is not None:
        report, section = await _recommendation_source(session, body.recommendation_id, state)
        if area is not None and area != section.area:
            raise ValidationError(
                f"The recommendation belongs to the {section.area!r} section.",
                loc=["body", "area"],
            )
        area, report_id, section_id = section.area, report.id, section.id
    if body.consultation_id is not None:
        consultation = await session.get(CapacityConsultation, body.consultation_id)
        if consultation is None or consultation.state_id != state.id:
            raise ValidationError(
                "No such consultation with this State.", loc=["body", "consultation_id"]
            )
    assert area is not None  # NeedCreate requires it for every other source
    need = Need(
        state_id=state.id,
        area=area,
        description=body.description,
        priority=body.priority.value,
        source=body.source.value,
        report_id=report_id,
        section_id=section_id,
        recommendation_id=body.recommendation_id,
        consultation_id=body.consultation_id,
        created_by=access.subject.user_id,
    )
    session.add(need)
    await session.flush()
    feed.touch(session, "need", [need.id])
    audit.record(
        session,
        access.audit,
        "need.create",
        object_type="need",
        object_id=need.id,
        details={"state": state.code, "area": area, "source": need.source},
    )
    return need


async def record_need(session: AsyncSession, access: Access, body: NeedCreate) -> NeedRead:
    """`create_need`, answered with the need's read model."""
    return await _read_model(session, await create_need(session, access, body))


async def update_need(
    session: AsyncSession, access: Access, need_id: uuid.UUID, body: NeedUpdate
) -> NeedRead:
    """Change a need's description, priority or status; the audit row keeps before and after."""
    need = (
        await session.exec(readable_needs(access).where(col(Need.id) == need_id).with_for_update())
    ).first()
    if need is None:
        raise NotFoundError("No such need.")
    wanted = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    changes = {
        name: (getattr(need, name), value)
        for name, value in wanted.items()
        if getattr(need, name) != value
    }
    if changes:
        for name, (_, after) in changes.items():
            setattr(need, name, after)
        need.updated_at = clock.now()
        session.add(need)
        await session.flush()
        feed.touch(session, "need", [need.id])
    audit.record(
        session,
        access.audit,
        "need.update",
        object_type="need",
        object_id=need.id,
        details={
            name: {"before": before, "after": after}
            for name, (before, after) in changes.items()
            if name != "description"
        }
        | ({"description": "changed"} if "description" in changes else {}),
    )
    return await _read_model(session, need)


async def read_models(session: AsyncSession, needs: Sequence[Need]) -> list[NeedRead]:
    """Read models with their State and marking: `compact` for the needs shared now,
    `restricted` for the others (one statement per batch)."""
    states = await organizations.organizations_by_id(session, {n.state_id for n in needs})
    shared = await markings.matching(
        session, col(Need.id), shared_now(clock.now()), [n.id for n in needs]
    )
    return [
        NeedRead(
            id=need.id,
            state=StateRef.of(states[need.state_id]),
            area=need.area,
            description=need.description,
            priority=need.priority,
            status=need.status,
            source=need.source,
            report_id=need.report_id,
            recommendation_id=need.recommendation_id,
            consultation_id=need.consultation_id,
            **markings.shared_marking(need.id in shared),
            created_at=need.created_at,
            updated_at=need.updated_at,
        )
        for need in needs
    ]


async def _read_model(session: AsyncSession, need: Need) -> NeedRead:
    return (await read_models(session, [need]))[0]


async def read_suggestions(
    session: AsyncSession, access: Access, need_id: uuid.UUID
) -> list[Suggestion]:
    """Entities and programmes to circulate a need to, audited as `need.suggestions` with
    the codes suggested; outside the caller's scope, 404."""
    need = await get_need(session, access, need_id)
    found = await _suggestions(session, access, need)
    audit.record(
        session,
        access.audit,
        "need.suggestions",
        object_type="need",
        object_id=need.id,
        details={"suggested": [s.organization.code for s in found]},
        read=True,
    )
    return found


async def _suggestions(session: AsyncSession, access: Access, need: Need) -> list[Suggestion]:
    """Entities already at work in the need's State and area first (the coordination
    matrix feeds the matching), then the entities and programmes that offered on needs of
    this area before, best first; at most MAX_SUGGESTIONS."""
    active = await _active_in_cell(session, access, need)
    history = await _offer_history(session, need)
    # An entity at work that also offered before: its best offer record joins its entry.
    best: dict[uuid.UUID, Suggestion] = {}
    for suggestion in history:
        best.setdefault(suggestion.organization.id, suggestion)
    merged = []
    for suggestion in active:
        offered = best.get(suggestion.organization.id)
        if offered is not None:
            suggestion = suggestion.model_copy(
                update={
                    "programme": suggestion.programme or offered.programme,
                    "offers": offered.offers,
                    "accepted": offered.accepted,
                    "last_offered_at": offered.last_offered_at,
                    "reason": f"{suggestion.reason}; {offered.reason}",
                }
            )
        merged.append(suggestion)
    shown = {suggestion.organization.id for suggestion in active}
    return (merged + [s for s in history if s.organization.id not in shown])[:MAX_SUGGESTIONS]


async def _active_in_cell(session: AsyncSession, access: Access, need: Need) -> list[Suggestion]:
    """The leads of planned or ongoing activities in the need's State and area that the
    caller may see (the activity scope of its grant), most active first. One grouped
    query."""
    count = func.count(col(Activity.id)).label("active")
    latest = func.max(col(Activity.starts_on)).label("latest")
    programme = func.max(col(Activity.programme)).label("programme")
    statement: Any = (
        core_select(col(Activity.lead_id), count, programme, latest)
        .where(
            col(Activity.state_id) == need.state_id,
            col(Activity.area) == need.area,
            col(Activity.status).in_(AT_WORK),
            planning.activity_scope(access, clock.now()),
        )
        .group_by(col(Activity.lead_id))
        .order_by(count.desc(), latest.desc())
        .limit(MAX_SUGGESTIONS)
    )
    rows = (await session.exec(statement)).all()
    entities = await organizations.organizations_by_id(session, {row[0] for row in rows})
    states = await organizations.organization_codes(session, [need.state_id])
    return [
        Suggestion(
            organization=OrganizationRef.of(entities[lead_id]),
            programme=programme_name,
            offers=0,
            accepted=0,
            last_offered_at=None,
            active_activities=active,
            reason=(
                f"Already at work in {states[need.state_id]} on {need.area}: {active} planned "
                f"or ongoing activit{'ies' if active != 1 else 'y'}"
            ),
        )
        for lead_id, active, programme_name, _ in rows
    ]


async def _offer_history(session: AsyncSession, need: Need) -> list[Suggestion]:
    """Entities and programmes that offered on needs of this area before, best first.

    Ranked by offers accepted, then offers made, then the latest offer: an entity whose
    help a State took before comes first. One grouped query.
    """
    same_area = (
        select(AssistanceRequestNeed.request_id)
        .join(Need, col(Need.id) == col(AssistanceRequestNeed.need_id))
        .where(col(Need.area) == need.area)
    )
    offers = func.count(col(Offer.id)).label("offers")
    accepted = func.sum(case((col(Offer.status) == OfferStatus.ACCEPTED.value, 1), else_=0)).label(
        "accepted"
    )
    latest = func.max(col(Offer.created_at)).label("latest")
    # Five columns: more than sqlmodel's typed select takes.
    statement: Any = (
        core_select(col(Offer.organization_id), col(Offer.programme), offers, accepted, latest)
        .where(col(Offer.request_id).in_(same_area))
        .group_by(col(Offer.organization_id), col(Offer.programme))
        .order_by(accepted.desc(), offers.desc(), latest.desc(), col(Offer.programme))
        .limit(MAX_SUGGESTIONS)
    )
    rows = (await session.exec(statement)).all()
    entities = await organizations.organizations_by_id(session, {row[0] for row in rows})
    result = []
    for organization_id, programme, offered, taken, last in rows:
        entity = entities[organization_id]
        reason = (
            f"{offered} offer{'s' if offered != 1 else ''} on {need.area} needs, "
            f"{taken or 0} accepted; latest on {last:%Y-%m-%d}"
        )
        result.append(
            Suggestion(
                organization=OrganizationRef.of(entity),
                programme=programme,
                offers=offered,
                accepted=taken or 0,
                last_offered_at=last,
                reason=reason,
            )
        )
    return result
