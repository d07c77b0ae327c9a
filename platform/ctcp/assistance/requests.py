"""Assistance requests: who sees which, filing them, and their workflow."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, false, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.assistance import needs as needs_service
from ctcp.assistance.models import (
    OPEN_NEED_STATUSES,
    AssistanceRequest,
    AssistanceRequestNeed,
    Need,
    Offer,
    OfferStatus,
    RequestStatus,
    RequestTransition,
)
from ctcp.assistance.schemas import RequestCreate, RequestRead, TransitionIn, TransitionRead
from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.consent import markings, needs_sharing
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest
from ctcp.notifications import service as notifications
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.reports import service as reports
from ctcp.reports.schemas import StateRef

Status = RequestStatus
STATE_FOCAL_POINT = "state_focal_point"
CTED_ANALYST = "cted_analyst"

# The workflow: which move is legal, and which roles own it. A move not listed is 409;
# a listed move by a role that does not own it is 403.
TRANSITIONS: dict[tuple[RequestStatus, RequestStatus], frozenset[str]] = {
    (Status.SUBMITTED, Status.UNDER_REVIEW): frozenset({CTED_ANALYST}),
    (Status.UNDER_REVIEW, Status.CIRCULATED): frozenset({CTED_ANALYST}),
    # Only by accepting an offer (POST /offers/{id}/accept), never by a bare transition.
    (Status.CIRCULATED, Status.MATCHED): frozenset({STATE_FOCAL_POINT}),
    (Status.MATCHED, Status.IN_PROGRESS): frozenset({STATE_FOCAL_POINT, CTED_ANALYST}),
    (Status.IN_PROGRESS, Status.COMPLETED): frozenset({STATE_FOCAL_POINT, CTED_ANALYST}),
    (Status.SUBMITTED, Status.DECLINED): frozenset({CTED_ANALYST}),
    (Status.UNDER_REVIEW, Status.DECLINED): frozenset({CTED_ANALYST}),
    (Status.CIRCULATED, Status.DECLINED): frozenset({CTED_ANALYST}),
    (Status.SUBMITTED, Status.WITHDRAWN): frozenset({STATE_FOCAL_POINT}),
    (Status.UNDER_REVIEW, Status.WITHDRAWN): frozenset({STATE_FOCAL_POINT}),
    (Status.CIRCULATED, Status.WITHDRAWN): frozenset({STATE_FOCAL_POINT}),
    (Status.MATCHED, Status.WITHDRAWN): frozenset({STATE_FOCAL_POINT}),
}
BY_ACCEPTING_AN_OFFER = (Status.CIRCULATED, Status.MATCHED)
EXITS = (Status.DECLINED, Status.WITHDRAWN)


@dataclass(frozen=True)
class RequestFilters:
    """What a reader narrows the list of requests to; None filters nothing."""

    state: str | None = None  # a State's code, in any case
    status: RequestStatus | None = None


def needs_all_shared(request_id: Any) -> ColumnElement[bool]:
    """SQL: every need the request names is shared now (one unshared need hides it all)."""
    need = aliased(Need)
    unshared = (
        select(AssistanceRequestNeed.request_id)
        .join(need, col(need.id) == col(AssistanceRequestNeed.need_id))
        .where(
            col(AssistanceRequestNeed.request_id) == request_id,
            ~needs_sharing.shared(
                col(need.state_id), col(need.report_id), col(need.section_id), clock.now()
            ),
        )
    )
    return ~exists(unshared)


def readable_requests(access: Access) -> SelectOfScalar[AssistanceRequest]:
    """The one place a request-read scope becomes SQL.

    A Compact entity sees a request while it is circulated, and afterwards if it offered
    on it, and only while the State shares every need the request names.
    """
    statement = select(AssistanceRequest)
    if DataScope.ALL in access.scopes:
        return statement
    allowed = []
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(col(AssistanceRequest.state_id) == access.organization.id)
    if DataScope.CONSENTED in access.scopes:
        allowed.append(shared_with(access.organization))
    return statement.where(or_(*allowed)) if allowed else statement.where(false())


def shared_with(organization: Organization) -> ColumnElement[bool]:
    """SQL: the request is open to this Compact entity as shared material — the
    `consented` request scope, and where an entity may offer (if it is circulated)."""
    if not needs_sharing.readers_of_shared_needs(organization):
        return false()
    offered = exists().where(
        col(Offer.request_id) == col(AssistanceRequest.id),
        col(Offer.organization_id) == organization.id,
    )
    return needs_all_shared(col(AssistanceRequest.id)) & (
        (col(AssistanceRequest.status) == Status.CIRCULATED.value) | offered
    )


async def get_request(
    session: AsyncSession,
    access: Access,
    request_id: uuid.UUID,
    *,
    lock: bool = False,
    statement: SelectOfScalar[AssistanceRequest] | None = None,
) -> AssistanceRequest:
    """A request inside the caller's scope (404 outside), optionally locked for a change."""
    statement = (statement if statement is not None else readable_requests(access)).where(
        col(AssistanceRequest.id) == request_id
    )
    if lock:
        statement = statement.with_for_update()
    found = (await session.exec(statement)).first()
    if found is None:
        raise NotFoundError("No such assistance request.")
    return found


async def list_requests(
    session: AsyncSession, access: Access, filters: RequestFilters, page: PageRequest
) -> Page[RequestRead]:
    """One page of the readable requests, newest first, audited as `request.list`."""
    statement = readable_requests(access)
    if filters.state is not None:
        statement = statement.join(
            Organization, col(Organization.id) == col(AssistanceRequest.state_id)
        ).where(col(Organization.code) == filters.state.upper())
    if filters.status is not None:
        statement = statement.where(col(AssistanceRequest.status) == filters.status.value)
    return await audited_page(
        session,
        access,
        statement,
        order=[AssistanceRequest.created_at, AssistanceRequest.id],
        page=page,
        read_models=read_models,
    )


async def read_request(session: AsyncSession, access: Access, request_id: uuid.UUID) -> RequestRead:
    """A request with its needs and history (404 outside scope), audited as `request.read`."""
    filed = await get_request(session, access, request_id)
    audit.record(
        session, access.audit, "request.read", object_type="request", object_id=filed.id, read=True
    )
    return await _read_model(session, filed)


async def create_request(
    session: AsyncSession, access: Access, body: RequestCreate
) -> AssistanceRequest:
    """File a request for the caller's own State, or, as CTED, on a State's behalf."""
    if DataScope.ALL in access.scopes:
        if body.state is None:
            raise ValidationError("Name the State the request is for.", loc=["body", "state"])
        state = await reports.member_state(session, body.state)
    else:
        state = access.organization
        if body.state is not None and body.state != state.code:
            raise ForbiddenError("A State's focal point files requests for their own State only.")
    wanted = set(body.need_ids)
    found = (
        await session.exec(
            select(Need).where(col(Need.id).in_(wanted), col(Need.state_id) == state.id)
        )
    ).all()
    if len(found) != len(wanted):
        raise ValidationError(
            "Every need must be one of the State's needs.", loc=["body", "need_ids"]
        )
    if any(need.status not in OPEN_NEED_STATUSES for need in found):
        raise ValidationError(
            "A request names needs that are open or partially met.", loc=["body", "need_ids"]
        )
    now = clock.now()
    filed = AssistanceRequest(
        state_id=state.id,
        title=body.title,
        description=body.description,
        filed_by_org=access.organization.id,
        filed_by=access.subject.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(filed)
    await session.flush()
    session.add_all(AssistanceRequestNeed(request_id=filed.id, need_id=n) for n in sorted(wanted))
    session.add(
        RequestTransition(
            request_id=filed.id,
            to_status=Status.SUBMITTED.value,
            at=now,
            by_user=access.subject.user_id,
            by_org=access.organization.id,
        )
    )
    await session.flush()
    feed.touch(session, "request", [filed.id])
    audit.record(
        session,
        access.audit,
        "request.create",
        object_type="request",
        object_id=filed.id,
        details={"state": state.code, "needs": sorted(str(n) for n in wanted)},
    )
    return filed


async def file_request(session: AsyncSession, access: Access, body: RequestCreate) -> RequestRead:
    """`create_request`, answered with the request's read model."""
    return await _read_model(session, await create_request(session, access, body))


async def move(
    session: AsyncSession,
    access: Access,
    filed: AssistanceRequest,
    to: RequestStatus,
    reason: str | None = None,
) -> None:
    """Record one workflow step: the status, its history row and its audit event."""
    before = filed.status
    now = clock.now()
    filed.status, filed.updated_at = to.value, now
    session.add(filed)
    session.add(
        RequestTransition(
            request_id=filed.id,
            from_status=before,
            to_status=to.value,
            reason=reason,
            at=now,
            by_user=access.subject.user_id,
            by_org=access.organization.id,
        )
    )
    await session.flush()
    feed.touch(session, "request", [filed.id])
    audit.record(
        session,
        access.audit,
        "request.transition",
        object_type="request",
        object_id=filed.id,
        details={"from": before, "to": to.value},
    )


async def transition(
    session: AsyncSession, access: Access, request_id: uuid.UUID, body: TransitionIn
) -> RequestRead:
    """Move a request along the workflow, if the move is legal and the caller's role owns it."""
    filed = await get_request(session, access, request_id, lock=True)
    _check_move(access, Status(filed.status), body)
    entities = await _entities_to_tell(session, body.notify)
    await move(session, access, filed, body.to, body.reason)
    if body.to in EXITS:
        await _close_pending_offers(session, access, filed, body.to)
    if body.to is Status.CIRCULATED:
        await _announce_circulation(session, filed, entities)
    return await _read_model(session, filed)


def _check_move(access: Access, current: RequestStatus, body: TransitionIn) -> None:
    """409 for a move the workflow does not have, 403 for one of another role, 422 for a
    move missing its reason or notifying on anything but a circulation."""
    step = (current, body.to)
    owners = TRANSITIONS.get(step)
    if owners is None:
        raise ConflictError(f"A request cannot go from {current.value} to {body.to.value}.")
    if step == BY_ACCEPTING_AN_OFFER:
        raise ConflictError("A request is matched by accepting one of its offers.")
    if not access.subject.roles & owners:
        raise ForbiddenError(f"Your roles may not move a request to {body.to.value}.")
    if body.notify is not None and body.to is not Status.CIRCULATED:
        raise ValidationError("Only a circulation notifies entities.", loc=["body", "notify"])
    if body.to in EXITS and body.reason is None:
        raise ValidationError("Say why the request ends here.", loc=["body", "reason"])


async def _entities_to_tell(
    session: AsyncSession, notify: list[str] | None
) -> list[uuid.UUID] | None:
    """The Compact entities a circulation names (422 for an unknown code); None for all."""
    if notify is None:
        return None
    entities = await organizations.compact_entities(session, notify, loc=["body", "notify"])
    return [entity.id for entity in entities.values()]


async def _close_pending_offers(
    session: AsyncSession, access: Access, filed: AssistanceRequest, because: RequestStatus
) -> None:
    """A request that ends closes its pending offers, audited as `offer.close`."""
    closed = (
        await session.exec(
            select(Offer.id).where(
                col(Offer.request_id) == filed.id,
                col(Offer.status) == OfferStatus.PENDING.value,
            )
        )
    ).all()
    if not closed:
        return
    await session.exec(
        update(Offer)
        .where(col(Offer.id).in_(closed))
        .values(status=OfferStatus.CLOSED.value, decided_at=clock.now())
    )
    audit.record(
        session,
        access.audit,
        "offer.close",
        object_type="request",
        object_id=filed.id,
        details={"offers": sorted(str(i) for i in closed), "because": because.value},
    )


async def shared_with_compact(session: AsyncSession, request_id: uuid.UUID) -> bool:
    """Whether the State shares every need of the request now: else the Compact hears nothing."""
    found = await session.exec(
        select(AssistanceRequest.id).where(
            col(AssistanceRequest.id) == request_id, needs_all_shared(col(AssistanceRequest.id))
        )
    )
    return found.first() is not None


async def _announce_circulation(
    session: AsyncSession, filed: AssistanceRequest, entities: list[uuid.UUID] | None
) -> None:
    """Tell the Compact's (or the named entities') focal points, only if they can see the
    request (needs shared)."""
    if not await shared_with_compact(session, filed.id):
        return
    await notifications.notify(
        session,
        event="request.circulated",
        object_type="request",
        object_id=filed.id,
        role="entity_focal_point",
        organization_ids=entities,
        organization_kind=OrganizationKind.COMPACT_ENTITY.value,
        subject="CTCP: a request for technical assistance was circulated",
        body=(
            "A request for technical assistance has been circulated to the Compact on CTCP.\n"
            f"Sign in to CTCP to read it and offer assistance (request {filed.id})."
        ),
    )


async def read_models(
    session: AsyncSession, requests: Sequence[AssistanceRequest]
) -> list[RequestRead]:
    """Requests with their needs (each marked), workflow history and marking, a few
    statements per batch, none per request.

    The marking is `compact` when any Compact entity may read the request now as shared
    material — `shared_with` for an entity that made no offer: circulated, and every
    need it names shared (its needs' own markings, decided in SQL) — else `restricted`.
    """
    ids = [r.id for r in requests]
    if not ids:
        return []
    pairs = (
        await session.exec(
            select(AssistanceRequestNeed.request_id, Need)
            .join(Need, col(Need.id) == col(AssistanceRequestNeed.need_id))
            .where(col(AssistanceRequestNeed.request_id).in_(ids))
            .order_by(col(Need.created_at), col(Need.id))
        )
    ).all()
    steps = (
        await session.exec(
            select(RequestTransition)
            .where(col(RequestTransition.request_id).in_(ids))
            .order_by(col(RequestTransition.at), col(RequestTransition.id))
        )
    ).all()
    orgs = await organizations.organizations_by_id(
        session, {r.state_id for r in requests} | {s.by_org for s in steps}
    )
    need_reads = {
        read.id: read for read in await needs_service.read_models(session, [n for _, n in pairs])
    }
    needs_of: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    for request_id, need in pairs:
        needs_of[request_id].append(need.id)
    history: dict[uuid.UUID, list[TransitionRead]] = {i: [] for i in ids}
    for step in steps:
        history[step.request_id].append(
            TransitionRead(
                from_status=step.from_status,
                to_status=step.to_status,
                reason=step.reason,
                at=step.at,
                by_organization=orgs[step.by_org].code,
            )
        )
    return [
        RequestRead(
            id=r.id,
            state=StateRef.of(orgs[r.state_id]),
            title=r.title,
            description=r.description,
            status=r.status,
            needs=[need_reads[n] for n in needs_of[r.id]],
            history=history[r.id],
            **markings.shared_marking(
                r.status == Status.CIRCULATED.value
                and all(need_reads[n].audience == markings.COMPACT for n in needs_of[r.id])
            ),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in requests
    ]


async def _read_model(session: AsyncSession, filed: AssistanceRequest) -> RequestRead:
    return (await read_models(session, [filed]))[0]
