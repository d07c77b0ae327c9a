"""Records the feed's entries in the unit of work that makes the change.

Installed into `ctcp.core.feed` on import; runs right before the unit commits, first
among the before-commit callbacks. It locks the feed's head row (so entries are numbered
in commit order: a reader that has seen number n has seen every entry below it), records
what time changed since the last unit (publications and needs-sharing decisions that
expired, entries turning stale: no job is needed for their revokes to be in order),
widens a State's change to its needs, requests and activities and a need's to the
requests and activities that name it, then asks each kind's own scope function who may
read each object now: any Compact entity, or only the organizations tied to it.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.changes.kinds import KINDS, Kind, chunks, entity_reader, readable
from ctcp.changes.models import ChangeEntry, FeedHead, FeedObject
from ctcp.consent.models import NeedsSharingEvent, Publication
from ctcp.contacts import service as contacts_service
from ctcp.contacts.models import ContactPoint
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.feed import Touched

Listener = Callable[[AsyncSession, Sequence[ChangeEntry]], Awaitable[None]]
# Called with the entries of each unit, in its transaction (webhook deliveries).
LISTENERS: list[Listener] = []

Readers = tuple[bool, list[str]]  # any Compact entity; the tied organizations' ids


async def lock_head(session: AsyncSession) -> FeedHead:
    statement = select(FeedHead).where(col(FeedHead.id) == 1).with_for_update()
    head = (await session.exec(statement)).one()
    await session.refresh(head)
    return head


async def _ids(session: AsyncSession, statement: object) -> set[uuid.UUID]:
    return set((await session.exec(statement)).all())  # type: ignore[call-overload]


async def _time_changes(
    session: AsyncSession, since: datetime, now: datetime, touched: Touched
) -> None:
    """What changed by the clock alone in (since, now]."""
    expired = select(col(Publication.id), col(Publication.state_id)).where(
        col(Publication.expires_at) > since,
        col(Publication.expires_at) <= now,
        col(Publication.revoked_at).is_(None),
    )
    for publication_id, state_id in (await session.exec(expired)).all():
        touched.objects.setdefault("publication", set()).add(publication_id)
        touched.states.add(state_id)
    sharing = select(col(NeedsSharingEvent.state_id)).where(
        col(NeedsSharingEvent.expires_at) > since, col(NeedsSharingEvent.expires_at) <= now
    )
    touched.states.update(await _ids(session, sharing))
    turning_stale = select(col(ContactPoint.id)).where(
        col(ContactPoint.confirmed_at) > contacts_service.stale_before(since),
        col(ContactPoint.confirmed_at) <= contacts_service.stale_before(now),
        col(ContactPoint.retired_at).is_(None),
    )
    touched.objects.setdefault("contact_point", set()).update(await _ids(session, turning_stale))


async def time_changed(session: AsyncSession, now: datetime) -> bool:
    """Whether something changed by the clock since the last sweep (no lock taken)."""
    head = (await session.exec(select(FeedHead).where(col(FeedHead.id) == 1))).one()
    if head.swept_until is None:
        return True
    probe = Touched()
    await _time_changes(session, head.swept_until, now, probe)
    return bool(probe.states) or any(probe.objects.values())


async def _widen(session: AsyncSession, touched: Touched) -> dict[str, set[uuid.UUID]]:
    objects = {kind: set(ids) for kind, ids in touched.objects.items() if ids}
    states = sorted(touched.states)
    for kind in KINDS.values():
        if kind.of_states is not None and states:
            for chunk in chunks(states):
                objects.setdefault(kind.name, set()).update(
                    await _ids(session, kind.of_states(chunk))
                )
    needs = sorted(objects.get("need", set()))
    for kind in KINDS.values():
        if kind.of_needs is not None and needs:
            for chunk in chunks(needs):
                objects.setdefault(kind.name, set()).update(
                    await _ids(session, kind.of_needs(chunk))
                )
    return {kind: ids for kind, ids in objects.items() if ids}


async def readers(
    session: AsyncSession, kind: Kind, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Readers]:
    """Who among the Compact entities may read each object now, by its kind's scope."""
    generic = await readable(session, kind, entity_reader(kind), ids)
    tied: dict[uuid.UUID, list[str]] = {object_id: [] for object_id in ids}
    if kind.ties is not None:
        by_org: dict[uuid.UUID, set[uuid.UUID]] = {}
        for chunk in chunks(sorted(ids)):
            for object_id, organization_id in (await session.exec(kind.ties(chunk))).all():
                by_org.setdefault(organization_id, set()).add(object_id)
        for organization_id, candidates in sorted(by_org.items()):
            reader = entity_reader(kind, organization_id)
            for object_id in await readable(session, kind, reader, candidates):
                tied[object_id].append(str(organization_id))
    return {object_id: (object_id in generic, sorted(tied[object_id])) for object_id in ids}


async def _previous(
    session: AsyncSession, kind: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, FeedObject]:
    found: dict[uuid.UUID, FeedObject] = {}
    for chunk in chunks(ids):
        statement = select(FeedObject).where(
            col(FeedObject.object_type) == kind, col(FeedObject.object_id).in_(chunk)
        )
        found.update({row.object_id: row for row in (await session.exec(statement)).all()})
    return found


async def record(session: AsyncSession) -> None:
    """The before-commit callback: number and record this unit's changes."""
    touched = feed.take(session)
    head = await lock_head(session)
    now = clock.now()
    if head.swept_until is not None and head.swept_until < now:
        await _time_changes(session, head.swept_until, now, touched)
    if head.swept_until is None or head.swept_until < now:
        head.swept_until = now
    objects = await _widen(session, touched)
    entries: list[ChangeEntry] = []
    seq = head.last_seq
    for name in sorted(objects):
        ids = sorted(objects[name])
        now_readers = await readers(session, KINDS[name], set(ids))
        previous = await _previous(session, name, ids)
        for object_id in ids:
            generic, orgs = now_readers[object_id]
            before = previous.get(object_id)
            seq += 1
            entries.append(
                ChangeEntry(
                    seq=seq,
                    object_type=name,
                    object_id=object_id,
                    at=now,
                    generic_before=before.generic if before else False,
                    generic_after=generic,
                    orgs_before=list(before.orgs) if before else [],
                    orgs_after=orgs,
                )
            )
            if before is None:
                session.add(
                    FeedObject(
                        object_type=name,
                        object_id=object_id,
                        generic=generic,
                        orgs=orgs,
                        latest_seq=seq,
                    )
                )
            else:
                before.generic, before.orgs, before.latest_seq = generic, orgs, seq
                session.add(before)
    head.last_seq = seq
    session.add(head)
    session.add_all(entries)
    await session.flush()
    for listener in LISTENERS:
        await listener(session, entries)


async def sweep(session: AsyncSession) -> None:
    """Record what changed by the clock alone, if anything did (a feed read calls this:
    an expiry's revoke is served even when nothing else was written since)."""
    if await time_changed(session, clock.now()):
        await record(session)


feed.install(record)
