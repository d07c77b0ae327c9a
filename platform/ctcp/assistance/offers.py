"""Offers: a Compact entity proposes a project on a circulated request; the State decides."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, false, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.assistance import requests as requests_service
from ctcp.assistance.models import AssistanceRequest, Offer, OfferStatus, RequestStatus
from ctcp.assistance.schemas import OfferCreate, OfferRead, OrganizationRef
from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, NotFoundError
from ctcp.core.pagination import Page, PageRequest
from ctcp.notifications import service as notifications
from ctcp.organizations import service as organizations
from ctcp.planning import service as planning


@dataclass(frozen=True)
class OfferFilters:
    """What a reader narrows the list of offers to; None filters nothing."""

    request_id: uuid.UUID | None = None
    status: OfferStatus | None = None


def readable_offers(access: Access) -> SelectOfScalar[Offer]:
    """The one place an offer scope becomes SQL: the entity's own, the State's, or all."""
    statement = select(Offer)
    if DataScope.ALL in access.scopes:
        return statement
    allowed: list[ColumnElement[bool]] = []
    if DataScope.OWN_ORG in access.scopes:
        # Even its own offers go dark for an entity while the State does not share the
        # request's needs: their status and the State's reasons are the State's news.
        allowed.append(
            (col(Offer.organization_id) == access.organization.id)
            & requests_service.needs_all_shared(col(Offer.request_id))
        )
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(
            col(Offer.request_id).in_(
                select(AssistanceRequest.id).where(
                    col(AssistanceRequest.state_id) == access.organization.id
                )
            )
        )
    return statement.where(or_(*allowed)) if allowed else statement.where(false())


async def get_offer(
    session: AsyncSession, access: Access, offer_id: uuid.UUID, *, lock: bool = False
) -> Offer:
    statement = readable_offers(access).where(col(Offer.id) == offer_id)
    if lock:
        statement = statement.with_for_update()
    offer = (await session.exec(statement)).first()
    if offer is None:
        raise NotFoundError("No such offer.")
    return offer


async def list_offers(
    session: AsyncSession, access: Access, filters: OfferFilters, page: PageRequest
) -> Page[OfferRead]:
    """One page of the readable offers, newest first, audited as `offer.list`."""
    statement = readable_offers(access)
    if filters.request_id is not None:
        statement = statement.where(col(Offer.request_id) == filters.request_id)
    if filters.status is not None:
        statement = statement.where(col(Offer.status) == filters.status.value)
    return await audited_page(
        session,
        access,
        statement,
        order=[Offer.created_at, Offer.id],
        page=page,
        read_models=_read_models,
    )


async def read_offer(session: AsyncSession, access: Access, offer_id: uuid.UUID) -> OfferRead:
    """An offer inside the caller's scope (404 outside), audited as `offer.read`."""
    offer = await get_offer(session, access, offer_id)
    audit.record(
        session, access.audit, "offer.read", object_type="offer", object_id=offer.id, read=True
    )
    return await _read_model(session, offer)


async def create_offer(
    session: AsyncSession, access: Access, request_id: uuid.UUID, body: OfferCreate
) -> Offer:
    """An offer on a request the entity can see (needs shared); only while it is circulated."""
    # Offering is open to the organizations that may read the request as shared material.
    offerable = select(AssistanceRequest).where(requests_service.shared_with(access.organization))
    filed = await requests_service.get_request(
        session, access, request_id, lock=True, statement=offerable
    )
    if filed.status != RequestStatus.CIRCULATED.value:
        raise ConflictError("Offers are made on circulated requests only.")
    offer = Offer(
        request_id=filed.id,
        organization_id=access.organization.id,
        programme=body.programme,
        description=body.description,
        timeline=body.timeline,
        budget=body.budget,
        currency=body.currency,
        created_by_user=access.subject.user_id,
        created_by_client=access.subject.client_id,
    )
    session.add(offer)
    await session.flush()
    # The offerer may read the request from now on, whatever becomes of its circulation.
    feed.touch(session, "request", [filed.id])
    audit.record(
        session,
        access.audit,
        "offer.create",
        object_type="offer",
        object_id=offer.id,
        details={"request_id": str(filed.id), "programme": offer.programme},
    )
    await notifications.notify(
        session,
        event="offer.received",
        object_type="offer",
        object_id=offer.id,
        role="state_focal_point",
        organization_ids=[filed.state_id],
        subject="CTCP: an offer of technical assistance was received",
        body=(
            "A Compact entity has offered assistance on one of your State's requests.\n"
            f"Sign in to CTCP to review it (offer {offer.id})."
        ),
    )
    return offer


async def make_offer(
    session: AsyncSession, access: Access, request_id: uuid.UUID, body: OfferCreate
) -> OfferRead:
    """`create_offer`, answered with the offer's read model."""
    return await _read_model(session, await create_offer(session, access, request_id, body))


async def decide(
    session: AsyncSession,
    access: Access,
    offer_id: uuid.UUID,
    *,
    accept: bool,
    reason: str | None,
) -> OfferRead:
    """Accept (the request is matched, other pending offers are not selected) or decline."""
    offer = await get_offer(session, access, offer_id)
    # Lock the request first: two acceptances on one request are serialized here.
    filed = (
        await session.exec(
            select(AssistanceRequest)
            .where(col(AssistanceRequest.id) == offer.request_id)
            .with_for_update()
        )
    ).one()
    await session.refresh(offer)
    if offer.status != OfferStatus.PENDING.value:
        raise ConflictError(f"The offer is already {offer.status}.")
    if filed.status != RequestStatus.CIRCULATED.value:
        raise ConflictError(f"The request is {filed.status}: offers are decided while circulated.")
    now = clock.now()
    offer.status = (OfferStatus.ACCEPTED if accept else OfferStatus.DECLINED).value
    offer.decided_at, offer.decided_by, offer.decision_reason = now, access.subject.user_id, reason
    session.add(offer)
    feed.touch(session, "request", [filed.id])
    others: Sequence[tuple[uuid.UUID, uuid.UUID]] = []
    if accept:
        others = await _not_select_others(session, offer, now)
        await requests_service.move(session, access, filed, RequestStatus.MATCHED)
    await session.flush()
    if accept:
        # Accepting an offer plans the work: the activity the coordination matrix counts.
        await planning.plan_from_offer(session, access, filed, offer)
    audit.record(
        session,
        access.audit,
        "offer.accept" if accept else "offer.decline",
        object_type="offer",
        object_id=offer.id,
        details={
            "request_id": str(filed.id),
            "not_selected": [str(other_id) for other_id, _ in others],
        },
    )
    await _announce_decision(session, filed, offer, others, accept=accept)
    return await _read_model(session, offer)


async def _not_select_others(
    session: AsyncSession, accepted: Offer, now: datetime
) -> Sequence[tuple[uuid.UUID, uuid.UUID]]:
    """Mark the request's other pending offers not selected; their (id, entity)."""
    others = (
        await session.exec(
            select(Offer.id, Offer.organization_id).where(
                col(Offer.request_id) == accepted.request_id,
                col(Offer.id) != accepted.id,
                col(Offer.status) == OfferStatus.PENDING.value,
            )
        )
    ).all()
    if others:
        await session.exec(
            update(Offer)
            .where(col(Offer.id).in_([other_id for other_id, _ in others]))
            .values(status=OfferStatus.NOT_SELECTED.value, decided_at=now)
        )
    return others


async def _announce_decision(
    session: AsyncSession,
    filed: AssistanceRequest,
    offer: Offer,
    others: Sequence[tuple[uuid.UUID, uuid.UUID]],
    *,
    accept: bool,
) -> None:
    """Tell the entity its offer's fate, and the others theirs were not selected."""
    if not await requests_service.shared_with_compact(session, filed.id):
        return  # the entities cannot see the request now: no news for them either
    await _tell_entity(session, offer, "offer.accepted" if accept else "offer.declined")
    for other_id, organization_id in others:
        await notifications.notify(
            session,
            event="offer.not_selected",
            object_type="offer",
            object_id=other_id,
            role="entity_focal_point",
            organization_ids=[organization_id],
            subject="CTCP: an offer of technical assistance was not selected",
            body=f"The State chose another offer. Sign in to CTCP for details (offer {other_id}).",
        )


async def _tell_entity(session: AsyncSession, offer: Offer, event: str) -> None:
    word = "accepted" if event == "offer.accepted" else "declined"
    await notifications.notify(
        session,
        event=event,
        object_type="offer",
        object_id=offer.id,
        role="entity_focal_point",
        organization_ids=[offer.organization_id],
        subject=f"CTCP: your offer of technical assistance was {word}",
        body=f"The State has {word} your offer. Sign in to CTCP for details (offer {offer.id}).",
    )


async def _read_models(session: AsyncSession, offers: Sequence[Offer]) -> list[OfferRead]:
    entities = await organizations.organizations_by_id(session, {o.organization_id for o in offers})
    return [
        OfferRead(
            id=o.id,
            request_id=o.request_id,
            organization=OrganizationRef.of(entities[o.organization_id]),
            programme=o.programme,
            description=o.description,
            timeline=o.timeline,
            budget=o.budget,
            currency=o.currency,
            status=o.status,
            created_at=o.created_at,
            decided_at=o.decided_at,
            decision_reason=o.decision_reason,
        )
        for o in offers
    ]


async def _read_model(session: AsyncSession, offer: Offer) -> OfferRead:
    return (await _read_models(session, [offer]))[0]
