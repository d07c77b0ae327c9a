"""Activities: who reads and writes which, the writes audited with what they changed; the
coordination matrix, counted in SQL over the caller's scope only.

The scope of an activity follows the needs it answers: its lead and partners always see
it, the Secretariat all, the State's focal points those in their State, and other Compact
entities only while the State's needs-sharing decision is in force and every need the
activity answers is shared. A Compact entity gets no matrix cell at all, not even zeros,
for a State that does not share its needs.
"""

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    union,
    union_all,
)
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.assistance import needs as needs_service
from ctcp.assistance.models import (
    OPEN_NEED_STATUSES,
    AssistanceRequest,
    AssistanceRequestNeed,
    CapacityConsultation,
    Need,
    Offer,
    OfferStatus,
    PlanMeasure,
    Programme,
)
from ctcp.audit import service as audit
from ctcp.audit.service import Outcome
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.consent import markings, needs_sharing
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.db import on_failure
from ctcp.core.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from ctcp.core.pagination import Page, PageRequest
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.planning import regions
from ctcp.planning.models import (
    AT_WORK,
    MOVES,
    Activity,
    ActivityMeasure,
    ActivityNeed,
    ActivityPartner,
    ActivityStatus,
)
from ctcp.planning.schemas import (
    ActivityCreate,
    ActivityRead,
    ActivityUpdate,
    EntitySummary,
    Matrix,
    MatrixCell,
    StatusCounts,
)
from ctcp.reports import service as reports
from ctcp.reports.models import ThematicArea
from ctcp.reports.schemas import StateRef

RESOURCE = "activity"
# The most rows one export carries: a year of the whole platform's work at today's pace,
# a bound on what one request builds and on the ids its audit event names. Beyond it the
# export is refused (narrow it by year, State or area), never cut short.
MAX_EXPORT = 10_000
# An activity with no end date runs on: its period reaches this far for overlaps.
OPEN_END = date(9999, 12, 31)
# The kinds of organization that lead and partner in activities: the Compact's members.
COMPACT_KINDS = (OrganizationKind.COMPACT_ENTITY.value, OrganizationKind.SECRETARIAT.value)


class MatrixBy(StrEnum):
    AREA = "area"
    PROGRAMME = "programme"


@dataclass(frozen=True)
class ActivityFilters:
    """What a reader narrows the activities to; None filters nothing."""

    state: str | None = None  # a State's code, in any case
    area: ThematicArea | None = None
    lead: str | None = None  # an entity's code
    status: ActivityStatus | None = None
    year: int | None = None  # activities whose period touches this calendar year
    programme: Programme | None = None


@dataclass(frozen=True)
class MatrixFilters:
    area: ThematicArea | None = None
    programme: Programme | None = None
    year: int | None = None
    region: regions.RegionalGroup | None = None
    by: MatrixBy = MatrixBy.AREA


# --- scope ------------------------------------------------------------------------------


def _needs_all_shared(activity_id: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: every need the activity answers is shared now (true for one with no needs).

    One uncorrelated set (the activities tied to a need not shared now), computed once
    per statement: as a correlated NOT EXISTS, SQLite built the set of unshared needs
    again for every activity (27 s for an entity's matrix on the large data set).
    """
    unshared = (
        select(ActivityNeed.activity_id)
        .join(Need, col(Need.id) == col(ActivityNeed.need_id))
        .where(
            ~needs_sharing.shared(
                col(Need.state_id), col(Need.report_id), col(Need.section_id), now
            )
        )
    )
    condition: ColumnElement[bool] = activity_id.not_in(unshared)
    return condition


def _consented(access: Access) -> bool:
    """Whether the `consented` scope reaches anything for this caller: the Compact only."""
    return DataScope.CONSENTED in access.scopes and needs_sharing.readers_of_shared_needs(
        access.organization
    )


def activity_scope(access: Access, now: datetime) -> ColumnElement[bool]:
    """The one place an activity scope becomes SQL (a condition on `activities`)."""
    if DataScope.ALL in access.scopes:
        return literal(True)
    allowed: list[ColumnElement[bool]] = []
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(col(Activity.state_id) == access.organization.id)
    if DataScope.OWN_ORG in access.scopes:
        allowed.append(col(Activity.lead_id) == access.organization.id)
        allowed.append(
            exists().where(
                col(ActivityPartner.activity_id) == col(Activity.id),
                col(ActivityPartner.organization_id) == access.organization.id,
            )
        )
    if _consented(access):
        allowed.append(
            col(Activity.state_id).in_(needs_sharing.sharing_states(now))
            & _needs_all_shared(col(Activity.id), now)
        )
    return or_(*allowed) if allowed else false()


def activities_in_scope(access: Access) -> SelectOfScalar[Activity]:
    return select(Activity).where(activity_scope(access, clock.now()))


def _writable(access: Access) -> SelectOfScalar[Activity]:
    """Writers: CTED any activity (`all`), an entity those it leads (`own_org`)."""
    statement = select(Activity)
    if DataScope.ALL in access.scopes:
        return statement
    if DataScope.OWN_ORG in access.scopes:
        return statement.where(col(Activity.lead_id) == access.organization.id)
    return statement.where(false())


async def get_activity(session: AsyncSession, access: Access, activity_id: uuid.UUID) -> Activity:
    """An activity inside the caller's scope; outside it, 404 as if it did not exist."""
    statement = activities_in_scope(access).where(col(Activity.id) == activity_id)
    found = (await session.exec(statement)).first()
    if found is None:
        raise NotFoundError("No such activity.")
    return found


def record_refusal(
    session: AsyncSession,
    access: Access,
    *,
    status: int,
    reason: str,
    object_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
) -> None:
    """Audit a write refused for its content (409, 422) as a denial of the write."""
    audit.record(
        session,
        access.audit,
        f"{access.resource}.{access.action}",
        outcome=Outcome.DENIED,
        object_type=access.resource,
        object_id=object_id,
        details={"reason": reason[:500], "status": status, "method": method, "path": path},
    )


def audit_refusals(
    session: AsyncSession,
    access: Access,
    *,
    object_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
) -> None:
    """Audit a write refused for its content (409, 422, a body that fails validation), as
    the guard audits the 403s and 404s: what was refused survives the rollback. (A body
    that is not JSON at all is refused before any route code runs, and not audited.)"""

    async def refused(failed: AsyncSession, error: BaseException) -> None:
        if isinstance(error, DomainError) and error.status in (409, 422):
            status, reason = error.status, error.detail
        elif isinstance(error, RequestValidationError):
            status = 422
            reason = "; ".join(
                f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', '')}"
                for e in error.errors()
            )
        else:
            return
        record_refusal(
            failed,
            access,
            status=status,
            reason=reason,
            object_id=object_id,
            method=method,
            path=path,
        )

    on_failure(session, refused)


def may_write(access: Access, activity: ActivityRead) -> bool:
    """The writers' rule, for showing the edit controls: CTED any activity, an entity the
    activities it leads (the write itself is decided in SQL by `_writable`)."""
    if DataScope.ALL in access.scopes:
        return True
    return DataScope.OWN_ORG in access.scopes and activity.lead.id == access.organization.id


# --- reads ------------------------------------------------------------------------------


def _year_condition(year: int) -> ColumnElement[bool]:
    return and_(
        col(Activity.starts_on) <= date(year, 12, 31),
        or_(col(Activity.ends_on).is_(None), col(Activity.ends_on) >= date(year, 1, 1)),
    )


async def _filtered(
    session: AsyncSession, access: Access, filters: ActivityFilters, *, matrix_rows: bool = False
) -> SelectOfScalar[Activity]:
    """The scoped statement with the reader's filters; with `matrix_rows`, only in the
    States whose matrix rows the caller gets (a coordination view, never a way to see a
    non-sharing State's row through one's own activities there)."""
    statement = activities_in_scope(access)
    if matrix_rows:
        statement = statement.where(_row_condition(access, col(Activity.state_id), clock.now()))
    if filters.state is not None:
        state = await organizations.organization_by_code(session, filters.state.upper())
        if state is None or state.kind != OrganizationKind.MEMBER_STATE.value:
            raise ValidationError(
                f"{filters.state!r} is not a Member State on the platform.",
                loc=["query", "state"],
            )
        statement = statement.where(col(Activity.state_id) == state.id)
    if filters.lead is not None:
        lead = await organizations.organization_by_code(session, filters.lead.upper())
        if lead is None or lead.kind not in COMPACT_KINDS:
            raise ValidationError(
                f"{filters.lead!r} is not a Compact entity on the platform.",
                loc=["query", "lead"],
            )
        statement = statement.where(col(Activity.lead_id) == lead.id)
    if filters.area is not None:
        statement = statement.where(col(Activity.area) == filters.area.value)
    if filters.status is not None:
        statement = statement.where(col(Activity.status) == filters.status.value)
    if filters.programme is not None:
        statement = statement.where(col(Activity.programme) == filters.programme.value)
    if filters.year is not None:
        statement = statement.where(_year_condition(filters.year))
    return statement


async def list_activities(
    session: AsyncSession,
    access: Access,
    filters: ActivityFilters,
    page: PageRequest,
    *,
    matrix_rows: bool = False,
) -> Page[ActivityRead]:
    """One page of the readable activities, newest first, audited as `activity.list`
    (`matrix_rows`: only in the States whose matrix rows the caller gets)."""
    return await audited_page(
        session,
        access,
        await _filtered(session, access, filters, matrix_rows=matrix_rows),
        order=[Activity.created_at, Activity.id],
        page=page,
        read_models=lambda session, rows: read_models(session, rows, access),
    )


async def read_activity(
    session: AsyncSession, access: Access, activity_id: uuid.UUID
) -> ActivityRead:
    """An activity inside the caller's scope (404 outside), audited as `activity.read`."""
    found = await get_activity(session, access, activity_id)
    audit.record(
        session, access.audit, "activity.read", object_type=RESOURCE, object_id=found.id, read=True
    )
    return (await read_models(session, [found], access))[0]


async def export_activities(
    session: AsyncSession, access: Access, filters: ActivityFilters, *, format: str
) -> list[ActivityRead]:
    """Every activity the caller may list under the filters, by State and start date,
    audited as `activity.export` with the ids; more than MAX_EXPORT is refused (422)."""
    statement = (await _filtered(session, access, filters)).order_by(
        col(Activity.state_id), col(Activity.starts_on), col(Activity.id)
    )
    found = list((await session.exec(statement.limit(MAX_EXPORT + 1))).all())
    if len(found) > MAX_EXPORT:
        raise ValidationError(
            f"More than {MAX_EXPORT:,} activities: narrow the export by year, State or area.",
            loc=["query"],
        )
    audit.record(
        session,
        access.audit,
        "activity.export",
        object_type=RESOURCE,
        details={"format": format, "count": len(found), "ids": [str(a.id) for a in found]},
        read=True,
    )
    shown = await read_models(session, found, access)
    return sorted(shown, key=lambda a: (a.state.code, a.starts_on, str(a.id)))


def _sees_every_link(access: Access) -> bool:
    """The Secretariat and the State itself see every need, measure and offer an activity
    is tied to; anyone else (the lead, partners, other entities) the needs it may read of
    (shared now), and the measures and the offer only as the lead."""
    return DataScope.ALL in access.scopes or DataScope.OWN_STATE in access.scopes


async def read_models(
    session: AsyncSession, found: Sequence[Activity], access: Access
) -> list[ActivityRead]:
    """Read models with the State, lead, partners, needs, measures and marking, a few
    statements per batch of 500; the ties shown as `access` may see them.

    The marking is `compact` when any Compact entity may read the activity now — the
    scope's `consented` branch: its State shares its needs and every need it answers is
    shared — else `restricted`. It is decided from the batch's own ties and States (the
    scope's uncorrelated set of activities tied to unshared needs costs 56 ms on SQLite's
    large data set even for one activity; this, 30 ms).
    """
    ids = [a.id for a in found]
    every_link = _sees_every_link(access)
    now = clock.now()
    unshared: set[uuid.UUID] = set()  # the activities tied to a need not shared now
    states = {a.state_id for a in found}
    sharing = await markings.matching(
        session,
        col(Organization.id),
        col(Organization.id).in_(needs_sharing.sharing_states(now)),
        states,
    )
    partners: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    needs: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    measures: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if ids:
        for chunk in _chunks(ids, 500):
            for activity_id, organization_id in (
                await session.exec(
                    select(ActivityPartner.activity_id, ActivityPartner.organization_id).where(
                        col(ActivityPartner.activity_id).in_(chunk)
                    )
                )
            ).all():
                partners[activity_id].append(organization_id)
            # The chunk's ties first, then which of their needs are shared, by id: joined
            # in one statement, SQLite walked every shared need (1.5 s per chunk).
            ties = (
                await session.exec(
                    select(ActivityNeed.activity_id, ActivityNeed.need_id).where(
                        col(ActivityNeed.activity_id).in_(chunk)
                    )
                )
            ).all()
            shown = await markings.matching(
                session, col(Need.id), needs_service.shared_now(now), {n for _, n in ties}
            )
            unshared.update(a for a, n in ties if n not in shown)
            if not every_link:
                ties = [(a, n) for a, n in ties if n in shown]
            for activity_id, need_id in ties:
                needs[activity_id].append(need_id)
            for activity_id, measure_id in (
                await session.exec(
                    select(ActivityMeasure.activity_id, ActivityMeasure.measure_id).where(
                        col(ActivityMeasure.activity_id).in_(chunk)
                    )
                )
            ).all():
                measures[activity_id].append(measure_id)
    lead_of = access.organization.id
    wanted = {a.state_id for a in found} | {a.lead_id for a in found}
    wanted |= {o for ids_ in partners.values() for o in ids_}
    named = await organizations.organizations_by_id(session, wanted)
    return [
        ActivityRead(
            id=a.id,
            state=StateRef.of(named[a.state_id]),
            area=a.area,
            programme=a.programme,
            kind=a.kind,
            title=a.title,
            description=a.description,
            status=a.status,
            starts_on=a.starts_on,
            ends_on=a.ends_on,
            lead=StateRef.of(named[a.lead_id]),
            partners=sorted(
                (StateRef.of(named[o]) for o in partners[a.id]), key=lambda ref: ref.code
            ),
            need_ids=sorted(needs[a.id]),
            measure_ids=sorted(measures[a.id]) if every_link or a.lead_id == lead_of else [],
            offer_id=a.offer_id if every_link or a.lead_id == lead_of else None,
            budget=a.budget,
            currency=a.currency,
            outputs=list(a.outputs or []),
            **markings.shared_marking(a.state_id in sharing and a.id not in unshared),
            version=a.version,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )
        for a in found
    ]


def _chunks(items: Sequence[uuid.UUID], size: int) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- writes -----------------------------------------------------------------------------


async def _members(
    session: AsyncSession, codes: Iterable[str], *, loc: list[str | int]
) -> dict[str, Organization]:
    """The Compact's members (entities, CTED, UNOCT) with these codes; 422 at `loc` for
    any code that is none (a Member State, or nothing)."""
    wanted = set(codes)
    if not wanted:
        return {}
    rows = await session.exec(
        select(Organization).where(
            col(Organization.code).in_(wanted), col(Organization.kind).in_(COMPACT_KINDS)
        )
    )
    found = {organization.code: organization for organization in rows.all()}
    missing = sorted(wanted - set(found))
    if missing:
        raise ValidationError(
            f"Not a Compact entity on the platform: {', '.join(missing)}.", loc=loc
        )
    return found


async def _state_needs(
    session: AsyncSession, access: Access, state: Organization, need_ids: Sequence[uuid.UUID]
) -> list[Need]:
    """The needs named, each the State's and one the writer may know of (a Compact entity:
    shared now); any other is refused alike, so the answer tells nothing about it."""
    if not need_ids:
        return []
    statement = select(Need).where(col(Need.id).in_(set(need_ids)), col(Need.state_id) == state.id)
    if DataScope.ALL not in access.scopes:
        statement = statement.where(
            needs_sharing.shared(
                col(Need.state_id), col(Need.report_id), col(Need.section_id), clock.now()
            )
        )
    found = list((await session.exec(statement)).all())
    if len(found) != len(set(need_ids)):
        raise ValidationError(
            f"Every need must be one of {state.code}'s needs.", loc=["body", "need_ids"]
        )
    return found


async def _lead_measures(
    session: AsyncSession,
    state: Organization,
    lead: Organization,
    measure_ids: Sequence[uuid.UUID],
    activity_id: uuid.UUID | None,
) -> list[uuid.UUID]:
    """Plan measures of the State's plans in the lead's charge, not carried out by another
    activity."""
    if not measure_ids:
        return []
    wanted = set(measure_ids)
    found = (
        await session.exec(
            select(PlanMeasure.id)
            .join(
                CapacityConsultation,
                col(CapacityConsultation.id) == col(PlanMeasure.consultation_id),
            )
            .where(
                col(PlanMeasure.id).in_(wanted),
                col(CapacityConsultation.state_id) == state.id,
                col(PlanMeasure.entity_id) == lead.id,
            )
        )
    ).all()
    if len(found) != len(wanted):
        raise ValidationError(
            f"Every measure must be one of {state.code}'s plan measures in {lead.code}'s charge.",
            loc=["body", "measure_ids"],
        )
    taken = (
        await session.exec(
            select(ActivityMeasure.measure_id).where(
                col(ActivityMeasure.measure_id).in_(wanted),
                col(ActivityMeasure.activity_id) != activity_id if activity_id else literal(True),
            )
        )
    ).all()
    if taken:
        raise ValidationError(
            "A measure is carried out by one activity: already linked "
            + ", ".join(str(m) for m in sorted(taken))
            + ".",
            loc=["body", "measure_ids"],
        )
    return sorted(wanted)


async def _check_offer(
    session: AsyncSession, offer_id: uuid.UUID, state: Organization, lead: Organization
) -> None:
    offer = (
        await session.exec(
            select(Offer)
            .join(AssistanceRequest, col(AssistanceRequest.id) == col(Offer.request_id))
            .where(
                col(Offer.id) == offer_id,
                col(Offer.organization_id) == lead.id,
                col(Offer.status) == OfferStatus.ACCEPTED.value,
                col(AssistanceRequest.state_id) == state.id,
            )
        )
    ).first()
    if offer is None:
        raise ValidationError(
            f"Not an accepted offer of {lead.code} to {state.code}.", loc=["body", "offer_id"]
        )
    taken = (
        await session.exec(select(Activity.id).where(col(Activity.offer_id) == offer_id))
    ).first()
    if taken is not None:
        raise ConflictError("An activity already carries out this offer.")


async def create_activity(
    session: AsyncSession, access: Access, body: ActivityCreate
) -> ActivityRead:
    """Record an activity: an entity's focal points for their own organization as lead,
    CTED analysts for any lead; the needs must be the State's."""
    state = await reports.member_state(session, body.state)
    lead_code = body.lead or access.organization.code
    named = await _members(session, {lead_code}, loc=["body", "lead"])
    lead = named[lead_code]
    if DataScope.ALL not in access.scopes and lead.id != access.organization.id:
        raise ForbiddenError("You record the activities your own organization leads.")
    partners = await _members(session, body.partners, loc=["body", "partners"])
    if lead.code in partners:
        raise ValidationError("The lead is not also a partner.", loc=["body", "partners"])
    found_needs = await _state_needs(session, access, state, body.need_ids)
    measures = await _lead_measures(session, state, lead, body.measure_ids, None)
    if body.offer_id is not None:
        await _check_offer(session, body.offer_id, state, lead)
    activity = Activity(
        state_id=state.id,
        area=body.area.value,
        programme=body.programme.value if body.programme else None,
        kind=body.kind.value,
        title=body.title,
        description=body.description,
        status=body.status.value,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        lead_id=lead.id,
        budget=body.budget,
        currency=body.currency,
        offer_id=body.offer_id,
        outputs=[output.model_dump(exclude_none=True) for output in body.outputs],
        created_by=access.subject.user_id,
    )
    session.add(activity)
    await session.flush()
    feed.touch(session, "activity", [activity.id])
    _link(session, activity.id, partners.values(), [n.id for n in found_needs], measures)
    await session.flush()
    audit.record(
        session,
        access.audit,
        "activity.create",
        object_type=RESOURCE,
        object_id=activity.id,
        details=_snapshot(activity, state.code, lead.code)
        | {
            "partners": sorted(partners),
            "need_ids": sorted(str(n.id) for n in found_needs),
            "measure_ids": [str(m) for m in measures],
            "offer_id": str(activity.offer_id) if activity.offer_id else None,
        },
    )
    return (await read_models(session, [activity], access))[0]


def _snapshot(activity: Activity, state: str, lead: str) -> dict[str, Any]:
    """What an activity was created as, for its audit event (the description aside)."""
    return {
        "state": state,
        "lead": lead,
        "area": activity.area,
        "programme": activity.programme,
        "kind": activity.kind,
        "title": activity.title,
        "status": activity.status,
        "starts_on": activity.starts_on.isoformat(),
        "ends_on": activity.ends_on.isoformat() if activity.ends_on else None,
        "budget": str(activity.budget) if activity.budget is not None else None,
        "currency": activity.currency,
    }


def _link(
    session: AsyncSession,
    activity_id: uuid.UUID,
    partners: Iterable[Organization],
    need_ids: Iterable[uuid.UUID],
    measure_ids: Iterable[uuid.UUID],
) -> None:
    for partner in partners:
        session.add(ActivityPartner(activity_id=activity_id, organization_id=partner.id))
    for need_id in need_ids:
        session.add(ActivityNeed(activity_id=activity_id, need_id=need_id))
    for measure_id in measure_ids:
        session.add(ActivityMeasure(activity_id=activity_id, measure_id=measure_id))


def programme_of(text: str) -> str | None:
    """The programme an offer names in words ("Countering Terrorist Travel"), if it is one
    of the platform's programmes; None otherwise."""
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return key if key in {programme.value for programme in Programme} else None


async def plan_from_offer(
    session: AsyncSession, access: Access, filed: AssistanceRequest, offer: Offer
) -> Activity:
    """The planned activity an accepted offer becomes: led by the offering entity, in the
    request's State, answering the request's needs (its area: the needs' most frequent)."""
    found_needs = list(
        (
            await session.exec(
                select(Need)
                .join(AssistanceRequestNeed, col(AssistanceRequestNeed.need_id) == col(Need.id))
                .where(col(AssistanceRequestNeed.request_id) == filed.id)
                .order_by(col(Need.created_at), col(Need.id))
            )
        ).all()
    )
    areas = Counter(need.area for need in found_needs)
    area = (
        max(areas, key=lambda a: (areas[a], -[n.area for n in found_needs].index(a)))
        if areas
        else ThematicArea.LEGISLATION.value
    )
    activity = Activity(
        state_id=filed.state_id,
        area=area,
        programme=programme_of(offer.programme),
        title=filed.title,
        description=offer.description,
        status=ActivityStatus.PLANNED.value,
        starts_on=clock.now().date(),
        lead_id=offer.organization_id,
        # The offer's budget stays the offer's (read by its entity and the State only): the
        # lead states the activity's budget, which every reader of the activity sees.
        offer_id=offer.id,
        created_by=access.subject.user_id,
    )
    session.add(activity)
    await session.flush()
    feed.touch(session, "activity", [activity.id])
    _link(session, activity.id, (), [n.id for n in found_needs], ())
    await session.flush()
    named = await organizations.organization_codes(session, [filed.state_id, offer.organization_id])
    audit.record(
        session,
        access.audit,
        "activity.create",
        object_type=RESOURCE,
        object_id=activity.id,
        details=_snapshot(activity, named[filed.state_id], named[offer.organization_id])
        | {
            "from_offer": str(offer.id),
            "request_id": str(filed.id),
            "need_ids": sorted(str(n.id) for n in found_needs),
        },
    )
    return activity


async def update_activity(
    session: AsyncSession,
    access: Access,
    activity_id: uuid.UUID,
    body: ActivityUpdate,
    *,
    if_match: int | None = None,
) -> ActivityRead:
    """Change some fields of an activity the caller may write (404 otherwise). A status
    moves forward only (planned -> ongoing -> completed; cancelled from either), outputs
    belong to a completed activity, and a stale `version` is refused with 409."""
    found = (
        await session.exec(
            _writable(access).where(col(Activity.id) == activity_id).with_for_update()
        )
    ).first()
    if found is None:
        raise NotFoundError("No such activity.")
    if if_match is not None and body.version is not None and if_match != body.version:
        raise ValidationError(
            "If-Match and version name different versions.", loc=["body", "version"]
        )
    based_on = body.version if body.version is not None else if_match
    if based_on is not None and based_on != found.version:
        raise ConflictError(
            f"The activity changed since version {based_on} (now {found.version}): "
            "reload it and apply your change again."
        )
    wanted = body.model_dump(
        exclude_unset=True,
        exclude={"version", "partners", "need_ids", "measure_ids", "outputs"},
    )
    status = wanted.get("status", found.status)
    if status != found.status and status not in MOVES[found.status]:
        raise ConflictError(f"An activity that is {found.status} cannot become {status}.")
    starts_on = wanted.get("starts_on", found.starts_on)
    ends_on = wanted.get("ends_on", found.ends_on)
    if ends_on is not None and ends_on < starts_on:
        raise ValidationError("The end date is before the start date.", loc=["body", "ends_on"])
    budget = wanted.get("budget", found.budget)
    currency = wanted.get("currency", found.currency)
    if (budget is None) != (currency is None):
        raise ValidationError("A budget and its currency go together.", loc=["body", "budget"])
    outputs = (
        [o.model_dump(exclude_none=True) for o in body.outputs]
        if body.outputs is not None
        else found.outputs
    )
    if outputs and status != ActivityStatus.COMPLETED.value:
        raise ValidationError(
            "Outputs are recorded for a completed activity.", loc=["body", "outputs"]
        )
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in wanted.items():
        value = value.value if isinstance(value, StrEnum) else value
        if getattr(found, name) != value:
            changes[name] = (getattr(found, name), value)
    if body.outputs is not None and outputs != found.outputs:
        changes["outputs"] = (found.outputs, outputs)
    named = await organizations.organizations_by_id(session, [found.state_id, found.lead_id])
    state, lead = named[found.state_id], named[found.lead_id]
    links: dict[str, tuple[list[str], list[str]]] = {}
    if body.partners is not None:
        partners = await _members(session, body.partners, loc=["body", "partners"])
        if lead.code in partners:
            raise ValidationError("The lead is not also a partner.", loc=["body", "partners"])
        links["partners"] = (await _partner_codes(session, found.id), sorted(partners))
    if body.need_ids is not None:
        linked = await _linked(session, ActivityNeed, found.id)
        kept = [n.id for n in await _state_needs(session, access, state, body.need_ids)]
        if not _sees_every_link(access):
            # The ties to needs the writer cannot see (CTED tied them; the State does not
            # share them now) stay: the writer never saw them, so never meant to drop them.
            shown = set(await _shared_needs(session, linked))
            kept += [need_id for need_id in linked if need_id not in shown]
        kept = sorted(set(kept))
        links["need_ids"] = ([str(i) for i in linked], [str(i) for i in kept])
    if body.measure_ids is not None:
        measures = await _lead_measures(session, state, lead, body.measure_ids, found.id)
        links["measure_ids"] = (
            [str(i) for i in await _linked(session, ActivityMeasure, found.id)],
            [str(m) for m in measures],
        )
    links = {name: pair for name, pair in links.items() if pair[0] != pair[1]}
    if changes or links:
        for name, (_, after) in changes.items():
            setattr(found, name, after)
        if "partners" in links:
            await session.exec(
                delete(ActivityPartner).where(col(ActivityPartner.activity_id) == found.id)
            )
            _link(session, found.id, partners.values(), (), ())
        if "need_ids" in links:
            await session.exec(
                delete(ActivityNeed).where(col(ActivityNeed.activity_id) == found.id)
            )
            _link(session, found.id, (), kept, ())
        if "measure_ids" in links:
            await session.exec(
                delete(ActivityMeasure).where(col(ActivityMeasure.activity_id) == found.id)
            )
            _link(session, found.id, (), (), measures)
        found.version += 1
        found.updated_at = clock.now()
        session.add(found)
        await session.flush()
        feed.touch(session, "activity", [found.id])
    details: dict[str, Any] = {
        name: {"before": _plain(before), "after": _plain(after)}
        for name, (before, after) in changes.items()
        if name != "description"
    }
    if "description" in changes:
        details["description"] = "changed"
    for name, (before_links, after_links) in links.items():
        details[name] = {"before": before_links, "after": after_links}
    audit.record(
        session,
        access.audit,
        "activity.update",
        object_type=RESOURCE,
        object_id=found.id,
        details=details | {"version": found.version},
    )
    return (await read_models(session, [found], access))[0]


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if value is not None and not isinstance(value, str | int | float | bool | list | dict):
        return str(value)
    return value


async def _shared_needs(session: AsyncSession, need_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    if not need_ids:
        return []
    rows = await session.exec(
        select(Need.id).where(
            col(Need.id).in_(need_ids),
            needs_sharing.shared(
                col(Need.state_id), col(Need.report_id), col(Need.section_id), clock.now()
            ),
        )
    )
    return list(rows.all())


async def _partner_codes(session: AsyncSession, activity_id: uuid.UUID) -> list[str]:
    rows = await session.exec(
        select(Organization.code)
        .join(ActivityPartner, col(ActivityPartner.organization_id) == col(Organization.id))
        .where(col(ActivityPartner.activity_id) == activity_id)
    )
    return sorted(rows.all())


async def _linked(
    session: AsyncSession, table: type[ActivityNeed] | type[ActivityMeasure], activity_id: uuid.UUID
) -> list[uuid.UUID]:
    column = col(table.need_id) if table is ActivityNeed else col(ActivityMeasure.measure_id)
    rows = await session.exec(
        core_select(column).where(col(table.activity_id) == activity_id)  # type: ignore[call-overload]
    )
    return sorted(rows.scalars().all())


# --- the coordination matrix ------------------------------------------------------------


def _row_condition(access: Access, state_column: Any, now: datetime) -> ColumnElement[bool]:
    """The States whose rows the caller gets: the Secretariat all, a State its own row, a
    Compact entity only the States whose needs-sharing decision is in force (no cell,
    not even zeros, for any other)."""
    if DataScope.ALL in access.scopes:
        return literal(True)
    condition: ColumnElement[bool] = false()
    if DataScope.OWN_STATE in access.scopes:
        condition = state_column == access.organization.id
    elif _consented(access):
        condition = state_column.in_(needs_sharing.sharing_states(now))
    return condition


def _state_codes_condition(column: Any, filters: MatrixFilters) -> ColumnElement[bool]:
    if filters.region is None:
        return literal(True)
    codes = sorted(regions.states_in(filters.region))
    condition: ColumnElement[bool] = column.in_(
        select(Organization.id).where(col(Organization.code).in_(codes))
    )
    return condition


async def read_matrix(session: AsyncSession, access: Access, filters: MatrixFilters) -> Matrix:
    """The cells State x area (or x programme) over the caller's scope, each with its open
    needs, activities by status, entities at work and the gap and overlap flags, all
    counted in one SQL statement (and one for the entities); audited as
    `activity.matrix` with the States shown."""
    now = clock.now()
    by_programme = filters.by is MatrixBy.PROGRAMME
    activity_key: Any = col(Activity.programme) if by_programme else col(Activity.area)
    # Activities in scope, in a State whose row the caller gets, under the filters.
    conditions: list[ColumnElement[bool]] = [
        activity_scope(access, now),
        _row_condition(access, col(Activity.state_id), now),
        _state_codes_condition(col(Activity.state_id), filters),
    ]
    if by_programme:
        conditions.append(col(Activity.programme).is_not(None))
    if filters.area is not None:
        conditions.append(col(Activity.area) == filters.area.value)
    if filters.programme is not None:
        conditions.append(col(Activity.programme) == filters.programme.value)
    if filters.year is not None:
        conditions.append(_year_condition(filters.year))
    scoped = (
        core_select(
            col(Activity.id).label("id"),
            col(Activity.state_id).label("state_id"),
            activity_key.label("key"),
            col(Activity.status).label("status"),
            col(Activity.lead_id).label("lead_id"),
            col(Activity.starts_on).label("starts_on"),
            func.coalesce(col(Activity.ends_on), OPEN_END).label("ends_on"),
        )
        .where(*conditions)
        .cte("scoped")
    )
    # Open needs in scope, in the caller's rows, under the filters (by programme: the
    # needs of capacity consultations under that programme).
    need_conditions: list[ColumnElement[bool]] = [
        col(Need.status).in_(OPEN_NEED_STATUSES),
        # The needs the caller may read, by the needs' own scope rule.
        needs_service.need_scope(access, now),
        _row_condition(access, col(Need.state_id), now),
        _state_codes_condition(col(Need.state_id), filters),
    ]
    if filters.area is not None:
        need_conditions.append(col(Need.area) == filters.area.value)
    # By programme, or filtered to one: the needs of capacity consultations under it (a
    # need from a report has no programme), so needs and activities meet in one cell.
    need_key: Any = col(CapacityConsultation.programme) if by_programme else col(Need.area)
    need_source: Any = core_select(col(Need.state_id).label("state_id"), need_key.label("key"))
    if by_programme or filters.programme is not None:
        need_source = need_source.join(
            CapacityConsultation, col(CapacityConsultation.id) == col(Need.consultation_id)
        )
    if filters.programme is not None:
        need_conditions.append(col(CapacityConsultation.programme) == filters.programme.value)
    open_needs = need_source.where(*need_conditions).subquery("open_needs")
    # Each open need and each activity is one row of its cell; the cells' counts come
    # from one GROUP BY over both. (Joining a per-cell table of needs to one of
    # activities made SQLite scan one of them once per row of the other.)
    zero = literal(0)

    def one_if(status: str) -> Any:
        return case((scoped.c.status == status, 1), else_=0)

    rows_of_cells = union_all(
        core_select(
            open_needs.c.state_id,
            open_needs.c.key,
            literal(1).label("open_needs"),
            zero.label("planned"),
            zero.label("ongoing"),
            zero.label("completed"),
            zero.label("cancelled"),
        ),
        core_select(
            scoped.c.state_id,
            scoped.c.key,
            zero,
            one_if(ActivityStatus.PLANNED.value),
            one_if(ActivityStatus.ONGOING.value),
            one_if(ActivityStatus.COMPLETED.value),
            one_if(ActivityStatus.CANCELLED.value),
        ),
    ).subquery("rows_of_cells")
    counts = ("open_needs", "planned", "ongoing", "completed", "cancelled")
    cells = (
        core_select(
            rows_of_cells.c.state_id,
            rows_of_cells.c.key,
            *(func.sum(rows_of_cells.c[name]).label(name) for name in counts),
        )
        .group_by(rows_of_cells.c.state_id, rows_of_cells.c.key)
        .cte("cells")
    )
    # Two lead entities at work in one cell in periods that overlap.
    first, second = aliased(scoped), aliased(scoped)
    overlapping = (
        core_select(first.c.state_id, first.c.key)
        .join(
            second,
            and_(
                second.c.state_id == first.c.state_id,
                second.c.key == first.c.key,
                second.c.lead_id != first.c.lead_id,
                second.c.starts_on <= first.c.ends_on,
                first.c.starts_on <= second.c.ends_on,
            ),
        )
        .where(first.c.status.in_(AT_WORK), second.c.status.in_(AT_WORK))
        .distinct()
        .cte("overlapping")
    )
    # The entities at work, by code: leads and partners of planned or ongoing activities.
    working = scoped.c.status.in_(AT_WORK)
    at_work = union(
        core_select(scoped.c.state_id, scoped.c.key, scoped.c.lead_id.label("org")).where(working),
        core_select(
            scoped.c.state_id, scoped.c.key, col(ActivityPartner.organization_id).label("org")
        )
        .join(ActivityPartner, col(ActivityPartner.activity_id) == scoped.c.id)
        .where(working),
    ).subquery("at_work")
    entities = (
        core_select(
            at_work.c.state_id,
            at_work.c.key,
            func.aggregate_strings(col(Organization.code), ",").label("codes"),
        )
        .join(Organization, col(Organization.id) == at_work.c.org)
        .group_by(at_work.c.state_id, at_work.c.key)
        .cte("entities")
    )
    state = aliased(Organization)
    statement: Any = (
        core_select(
            col(state.code),
            cells.c.key,
            *(cells.c[name] for name in counts),
            and_(cells.c.open_needs > 0, cells.c.planned + cells.c.ongoing == 0).label("gap"),
            overlapping.c.state_id.is_not(None).label("overlap"),
            entities.c.codes,
        )
        .select_from(cells)
        .join(state, col(state.id) == cells.c.state_id)
        .outerjoin(
            overlapping,
            and_(overlapping.c.state_id == cells.c.state_id, overlapping.c.key == cells.c.key),
        )
        .outerjoin(
            entities,
            and_(entities.c.state_id == cells.c.state_id, entities.c.key == cells.c.key),
        )
    )
    result = [
        MatrixCell(
            state=state_code,
            area=None if by_programme else key,
            programme=key if by_programme else None,
            open_needs=int(open_),
            activities=StatusCounts(
                planned=int(planned),
                ongoing=int(ongoing),
                completed=int(completed),
                cancelled=int(cancelled),
                total=int(planned) + int(ongoing) + int(completed) + int(cancelled),
            ),
            entities=sorted(codes.split(",")) if codes else [],
            gap=bool(gap),
            overlap=bool(overlap),
        )
        for state_code, key, open_, planned, ongoing, completed, cancelled, gap, overlap, codes in (
            await session.exec(statement)
        ).all()
    ]
    result.sort(key=lambda cell: (cell.state, cell.area or cell.programme or ""))
    audit.record(
        session,
        access.audit,
        "activity.matrix",
        object_type=RESOURCE,
        details={
            "by": filters.by.value,
            "area": filters.area.value if filters.area else None,
            "programme": filters.programme.value if filters.programme else None,
            "year": filters.year,
            "region": filters.region.value if filters.region else None,
            "states": sorted({cell.state for cell in result}),
        },
        read=True,
    )
    return Matrix(by=filters.by.value, year=filters.year, cells=result)


async def entity_summaries(
    session: AsyncSession, access: Access, filters: MatrixFilters
) -> list[EntitySummary]:
    """Per lead entity, over the activities the matrix counts: activities by status, and
    in how many States and areas; audited as `activity.summary`."""
    now = clock.now()
    conditions: list[ColumnElement[bool]] = [
        activity_scope(access, now),
        _row_condition(access, col(Activity.state_id), now),
        _state_codes_condition(col(Activity.state_id), filters),
    ]
    if filters.area is not None:
        conditions.append(col(Activity.area) == filters.area.value)
    if filters.programme is not None:
        conditions.append(col(Activity.programme) == filters.programme.value)
    if filters.year is not None:
        conditions.append(_year_condition(filters.year))

    def status_count(status: str) -> Any:
        return func.sum(case((col(Activity.status) == status, 1), else_=0))

    statement: Any = (
        core_select(
            col(Activity.lead_id),
            status_count(ActivityStatus.PLANNED.value),
            status_count(ActivityStatus.ONGOING.value),
            status_count(ActivityStatus.COMPLETED.value),
            status_count(ActivityStatus.CANCELLED.value),
            func.count(func.distinct(col(Activity.state_id))),
            func.count(func.distinct(col(Activity.area))),
        )
        .where(*conditions)
        .group_by(col(Activity.lead_id))
    )
    rows = (await session.exec(statement)).all()
    codes = await organizations.organization_codes(session, {row[0] for row in rows})
    result = [
        EntitySummary(
            entity=codes[lead_id],
            activities=StatusCounts(
                planned=int(p),
                ongoing=int(o),
                completed=int(c),
                cancelled=int(x),
                total=int(p) + int(o) + int(c) + int(x),
            ),
            states=int(states),
            areas=int(areas),
        )
        for lead_id, p, o, c, x, states, areas in rows
    ]
    result.sort(key=lambda summary: (-summary.activities.total, summary.entity))
    audit.record(
        session,
        access.audit,
        "activity.summary",
        object_type=RESOURCE,
        details={"entities": [s.entity for s in result]},
        read=True,
    )
    return result
