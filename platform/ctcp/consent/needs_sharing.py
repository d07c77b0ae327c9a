"""Whether a State shares its technical-assistance needs with the Compact.

A need from a report recommendation is shared while the current consent on that report
version covers the recommendation's section and says `share_needs`; a need from no report
(a capacity consultation, the State's own request) while the State's current
needs-sharing decision says so. Both are decided in SQL at read time, so a withdrawal
hides the needs from the next statement on.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.consent import service
from ctcp.consent.models import (
    ConsentEvent,
    NeedsSharingEvent,
    Publication,
    PublicationSection,
)
from ctcp.consent.schemas import NeedsSharingDecision, NeedsSharingRead, NeedsSharingState
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.errors import NotFoundError, ValidationError
from ctcp.organizations.models import Organization, OrganizationKind


def sharing_sections(now: datetime) -> Select[uuid.UUID]:
    """SQL: the report sections whose needs are shared now.

    A section's needs are shared only while a live publication carries that very section
    under a consent that shares needs: partial consent shares the needs of the consented
    sections only, and a superseded, withdrawn or expired consent has no live publication.
    """
    return (
        select(col(PublicationSection.section_id))
        .join(Publication, col(Publication.id) == col(PublicationSection.publication_id))
        .join(ConsentEvent, col(ConsentEvent.id) == col(Publication.consent_event_id))
        .where(service.live(now), col(ConsentEvent.share_needs).is_(True))
    )


def sharing_states(now: datetime) -> Select[uuid.UUID]:
    """SQL: the States whose current needs-sharing decision shares (latest, not expired)."""
    later = aliased(NeedsSharingEvent)
    superseded = exists().where(
        col(later.state_id) == col(NeedsSharingEvent.state_id),
        col(later.sequence) > col(NeedsSharingEvent.sequence),
    )
    return select(col(NeedsSharingEvent.state_id)).where(
        ~superseded,
        col(NeedsSharingEvent.share_needs).is_(True),
        service.unexpired(col(NeedsSharingEvent.expires_at), now),
    )


def shared(state_id: Any, report_id: Any, section_id: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the need with these columns is shared by its State now.

    A need from a report recommendation follows its section's consent; any other need its
    State's needs-sharing decision. Both sets are uncorrelated subqueries: the database
    computes each once per statement, not once per need.
    """
    return or_(
        and_(report_id.is_not(None), section_id.in_(sharing_sections(now))),
        and_(report_id.is_(None), state_id.in_(sharing_states(now))),
    )


def readers_of_shared_needs(organization: Organization) -> bool:
    """Shared needs go to the Compact (and the Secretariat), never to other States."""
    return organization.kind in (
        OrganizationKind.COMPACT_ENTITY.value,
        OrganizationKind.SECRETARIAT.value,
    )


async def sharing_state(session: AsyncSession, access: Access, code: str) -> Organization:
    """The Member State named by `code`, inside the caller's consent scope (404 outside)."""
    statement = sm_select(Organization).where(
        col(Organization.code) == code.upper(),
        col(Organization.kind) == OrganizationKind.MEMBER_STATE.value,
    )
    if DataScope.ALL not in access.scopes:
        if DataScope.OWN_STATE not in access.scopes:
            raise NotFoundError("No such State.")
        statement = statement.where(col(Organization.id) == access.organization.id)
    state = (await session.exec(statement)).first()
    if state is None:
        raise NotFoundError("No such State.")
    return state


async def history(session: AsyncSession, state_id: uuid.UUID) -> list[NeedsSharingEvent]:
    statement = (
        sm_select(NeedsSharingEvent)
        .where(col(NeedsSharingEvent.state_id) == state_id)
        .order_by(col(NeedsSharingEvent.sequence))
    )
    return list((await session.exec(statement)).all())


def as_read(event: NeedsSharingEvent) -> NeedsSharingRead:
    return NeedsSharingRead.model_validate(event, from_attributes=True)


async def read_sharing(session: AsyncSession, access: Access, code: str) -> NeedsSharingState:
    """Whether the State named by `code` shares its needs, and the history, inside the
    caller's consent scope (404 outside); audited as `needs_sharing.read`."""
    state = await sharing_state(session, access, code)
    events = await history(session, state.id)
    current = service.current_of(events, clock.now())
    audit.record(
        session,
        access.audit,
        "needs_sharing.read",
        object_type="organization",
        object_id=state.id,
        read=True,
    )
    return NeedsSharingState(
        state=state.code,
        current=as_read(current) if current else None,
        history=[as_read(e) for e in events],
    )


async def _lock_state(session: AsyncSession, state: Organization) -> None:
    """Serialize decisions on one State, so sequences stay ordered (PostgreSQL row lock)."""
    # FOR NO KEY UPDATE: serializes decisions without blocking rows that reference the State.
    await session.exec(
        sm_select(Organization.id)
        .where(col(Organization.id) == state.id)
        .with_for_update(key_share=True)
    )


async def record(
    session: AsyncSession,
    access: Access,
    state: Organization,
    decision: NeedsSharingDecision,
    *,
    may_broaden: bool,
) -> NeedsSharingRead:
    """Record a decision; starting to share is broadening, for consent officers only."""
    now = clock.now()
    if decision.expires_at is not None and decision.expires_at <= now:
        raise ValidationError("The expiry must be in the future.", loc=["body", "expires_at"])
    await _lock_state(session, state)
    events = await history(session, state.id)
    service.check_not_stale(events, decision.after_sequence)
    current = service.current_of(events, now)
    broadens = decision.share_needs and (
        current is None
        or not current.share_needs
        # Sharing for longer is broadening too: no expiry, or a later one.
        or service.later_expiry(decision.expires_at, current.expires_at)
    )
    if broadens:
        service.check_broadening(
            may_broaden=may_broaden,
            after_sequence=decision.after_sequence,
            reference=decision.reference,
            reference_rule="Sharing needs takes the reference of the State's communication.",
        )
    event = NeedsSharingEvent(
        state_id=state.id,
        sequence=(events[-1].sequence + 1) if events else 1,
        share_needs=decision.share_needs,
        reference=decision.reference,
        effective_at=now,
        expires_at=decision.expires_at if decision.share_needs else None,
        recorded_at=now,
        recorded_by=access.subject.user_id,
    )
    _audit(session, access, state, event, current)
    return as_read(event)


async def withdraw(
    session: AsyncSession, access: Access, state: Organization, reason: str
) -> NeedsSharingRead:
    """Stop sharing at once; a State's focal point or a consent officer may."""
    now = clock.now()
    await _lock_state(session, state)
    events = await history(session, state.id)
    event = NeedsSharingEvent(
        state_id=state.id,
        sequence=(events[-1].sequence + 1) if events else 1,
        share_needs=False,
        reason=reason,
        withdrawal=True,
        effective_at=now,
        recorded_at=now,
        recorded_by=access.subject.user_id,
    )
    _audit(session, access, state, event, service.current_of(events, now))
    return as_read(event)


def _audit(
    session: AsyncSession,
    access: Access,
    state: Organization,
    event: NeedsSharingEvent,
    before: NeedsSharingEvent | None,
) -> None:
    session.add(event)
    feed.touch_state(session, state.id)
    audit.record(
        session,
        access.audit,
        "needs_sharing.withdraw" if event.withdrawal else "needs_sharing.record",
        object_type="organization",
        object_id=state.id,
        details={
            "state": state.code,
            "before": as_read(before).model_dump(mode="json") if before else None,
            "after": as_read(event).model_dump(mode="json"),
        },
    )
