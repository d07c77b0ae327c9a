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

import importlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, insert
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.assistance.models import Need
from ctcp.changes.kinds import KINDS, Kind, chunks, entity_reader, readable, stand_in
from ctcp.changes.models import ChangeEntry, FeedHead, FeedObject
from ctcp.consent.models import NeedsSharingEvent, Publication
from ctcp.contacts import service as contacts_service
from ctcp.contacts.models import ContactPoint
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.feed import Touched
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.planning.models import Activity

Listener = Callable[[AsyncSession, Sequence[ChangeEntry]], Awaitable[None]]
# Called with the entries of each unit, in its transaction (webhook deliveries).
LISTENERS: list[Listener] = []

# Any Compact entity; the Secretariat's organizations; the tied organizations' ids.
Readers = tuple[bool, bool, list[str]]
COMPACT, SECRETARIAT = OrganizationKind.COMPACT_ENTITY, OrganizationKind.SECRETARIAT
INSERT_BATCH = 1000


def reads(entry: ChangeEntry, organization: Organization, *, after: bool) -> bool:
    """Whether an organization's entity focal points could read the object just after
    this entry (`after`) or just before it: as any organization of its kind, or as one
    tied to the object. An organization created after the entry learns nothing of it."""
    if entry.at < organization.created_at:
        return False
    if organization.kind == OrganizationKind.SECRETARIAT.value:
        by_kind = entry.secretariat_after if after else entry.secretariat_before
    else:
        by_kind = entry.generic_after if after else entry.generic_before
    return by_kind or str(organization.id) in (entry.orgs_after if after else entry.orgs_before)


async def lock_head(session: AsyncSession) -> FeedHead:
    statement = select(FeedHead).where(col(FeedHead.id) == 1).with_for_update()
    head = (await session.exec(statement)).one()
    await session.refresh(head)
    return head


async def _ids(session: AsyncSession, statement: object) -> set[uuid.UUID]:
    return set((await session.exec(statement)).all())  # type: ignore[call-overload]


async def _time_changes(
    session: AsyncSession, since: datetime | None, now: datetime, touched: Touched
) -> None:
    """What changed by the clock alone.

    Expiries are found by what the feed last recorded, not by a window of time: a
    publication past its expiry that the feed still records as readable, a State whose
    needs-sharing decision expired while the feed still records one of its needs as
    shared or one of its activities as open to the Compact. Whatever the clocks of the
    instances did (one ahead, one stepped back), the first unit that sees the expiry
    records it, once. Contact points turning stale (a
    flag in their payload, not a change of who reads them) are found in (since, now].
    """
    recorded_readable = (
        (col(FeedObject.generic).is_(True))
        | (col(FeedObject.secretariat).is_(True))
        | (func.json_array_length(col(FeedObject.orgs)) > 0)
    )
    expired = (
        select(col(Publication.id), col(Publication.state_id))
        .join(
            FeedObject,
            (col(FeedObject.object_type) == "publication")
            & (col(FeedObject.object_id) == col(Publication.id)),
        )
        .where(
            col(Publication.expires_at) <= now,
            col(Publication.revoked_at).is_(None),
            recorded_readable,
        )
    )
    for publication_id, state_id in (await session.exec(expired)).all():
        touched.objects.setdefault("publication", set()).add(publication_id)
        touched.states.add(state_id)
    later = aliased(NeedsSharingEvent)
    still_shared = (
        select(col(Need.id))
        .join(
            FeedObject,
            (col(FeedObject.object_type) == "need") & (col(FeedObject.object_id) == col(Need.id)),
        )
        .where(
            col(Need.state_id) == col(NeedsSharingEvent.state_id),
            col(Need.report_id).is_(None),
            recorded_readable,
        )
    )
    # An activity is read by any Compact entity only while its State shares, needs or not.
    still_open = (
        select(col(Activity.id))
        .join(
            FeedObject,
            (col(FeedObject.object_type) == "activity")
            & (col(FeedObject.object_id) == col(Activity.id)),
        )
        .where(
            col(Activity.state_id) == col(NeedsSharingEvent.state_id),
            col(FeedObject.generic).is_(True) | col(FeedObject.secretariat).is_(True),
        )
    )
    sharing = select(col(NeedsSharingEvent.state_id)).where(
        col(NeedsSharingEvent.expires_at) <= now,
        col(NeedsSharingEvent.share_needs).is_(True),
        ~exists().where(
            col(later.state_id) == col(NeedsSharingEvent.state_id),
            col(later.sequence) > col(NeedsSharingEvent.sequence),
        ),
        exists(still_shared) | exists(still_open),
    )
    touched.states.update(await _ids(session, sharing))
    if since is None:
        return
    turning_stale = select(col(ContactPoint.id)).where(
        # Stale once `confirmed_at < stale_before(now)` (contacts.service.is_stale).
        col(ContactPoint.confirmed_at) >= contacts_service.stale_before(since),
        col(ContactPoint.confirmed_at) < contacts_service.stale_before(now),
        col(ContactPoint.retired_at).is_(None),
    )
    touched.objects.setdefault("contact_point", set()).update(await _ids(session, turning_stale))


async def time_changed(session: AsyncSession, now: datetime) -> bool:
    """Whether something changed by the clock since the feed last looked (no lock taken)."""
    head = (await session.exec(select(FeedHead).where(col(FeedHead.id) == 1))).one()
    probe = Touched()
    await _time_changes(session, head.swept_until, max(now, head.swept_until or now), probe)
    return bool(probe.states) or any(probe.objects.values())


async def _widen(
    session: AsyncSession, touched: Touched
) -> tuple[dict[str, set[uuid.UUID]], dict[str, set[uuid.UUID]]]:
    """The objects to record: those written (`direct`), and those whose State's or need's
    change may change who reads them (`widened`)."""
    direct = {kind: set(ids) for kind, ids in touched.objects.items() if ids}
    widened: dict[str, set[uuid.UUID]] = {}
    states = sorted(touched.states)
    for kind in KINDS.values():
        if kind.of_states is not None and states:
            for chunk in chunks(states):
                widened.setdefault(kind.name, set()).update(
                    await _ids(session, kind.of_states(chunk))
                )
    needs = sorted(direct.get("need", set()) | widened.get("need", set()))
    for kind in KINDS.values():
        if kind.of_needs is not None and needs:
            for chunk in chunks(needs):
                widened.setdefault(kind.name, set()).update(
                    await _ids(session, kind.of_needs(chunk))
                )
    return direct, widened


async def _organizations(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Organization]:
    found: dict[uuid.UUID, Organization] = {}
    for chunk in chunks(ids):
        statement = select(Organization).where(col(Organization.id).in_(chunk))
        found.update({o.id: o for o in (await session.exec(statement)).all()})
    return found


async def readers(
    session: AsyncSession, kind: Kind, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Readers]:
    """Who among the feed's readers may read each object now, by its kind's scope: any
    Compact entity, the Secretariat's organizations, the tied organizations (each read as
    the organization it is)."""
    generic = await readable(session, kind, entity_reader(kind, stand_in(COMPACT)), ids)
    secretariat = await readable(session, kind, entity_reader(kind, stand_in(SECRETARIAT)), ids)
    tied: dict[uuid.UUID, list[str]] = {object_id: [] for object_id in ids}
    if kind.ties is not None:
        by_org: dict[uuid.UUID, set[uuid.UUID]] = {}
        for chunk in chunks(sorted(ids)):
            for object_id, organization_id in (await session.exec(kind.ties(chunk))).all():
                by_org.setdefault(organization_id, set()).add(object_id)
        organizations = await _organizations(session, sorted(by_org))
        for organization_id, candidates in sorted(by_org.items()):
            organization = organizations.get(organization_id)
            if organization is None:
                continue
            # Those its whole kind reads already need no reading of their own.
            reads_anyway = generic if organization.kind == COMPACT.value else secretariat
            left = candidates - reads_anyway.keys()
            if not left:
                continue
            reader = entity_reader(kind, organization)
            for object_id in await readable(session, kind, reader, left):
                tied[object_id].append(str(organization_id))
    return {
        object_id: (object_id in generic, object_id in secretariat, sorted(tied[object_id]))
        for object_id in ids
    }


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


def _unchanged(before: FeedObject | None, now: Readers) -> bool:
    return before is not None and (before.generic, before.secretariat, before.orgs) == (
        now[0],
        now[1],
        now[2],
    )


async def record(session: AsyncSession) -> None:
    """The before-commit callback: number and record this unit's changes."""
    touched = feed.take(session)
    head = await lock_head(session)
    # Never earlier than the sweep mark another instance set (clocks differ a little).
    now = clock.now()
    # The stale window's mark only moves forward, whichever instance's clock is ahead.
    mark = max(now, head.swept_until) if head.swept_until else now
    await _time_changes(session, head.swept_until, mark, touched)
    head.swept_until = mark
    direct, widened = await _widen(session, touched)
    entries: list[dict[str, object]] = []
    objects: list[dict[str, object]] = []
    known: list[tuple[str, uuid.UUID]] = []
    seq = head.last_seq
    for name in sorted(direct.keys() | widened.keys()):
        kind = KINDS[name]
        ids = sorted(direct.get(name, set()) | widened.get(name, set()))
        now_readers = await readers(session, kind, set(ids))
        previous = await _previous(session, name, ids)
        for object_id in ids:
            before = previous.get(object_id)
            generic, secretariat, orgs = now_readers[object_id]
            if (
                kind.follows_readers
                and object_id not in direct.get(name, set())
                and _unchanged(before, now_readers[object_id])
            ):
                continue
            seq += 1
            entries.append(
                {
                    "seq": seq,
                    "object_type": name,
                    "object_id": object_id,
                    "at": now,
                    "generic_before": before.generic if before else False,
                    "generic_after": generic,
                    "secretariat_before": before.secretariat if before else False,
                    "secretariat_after": secretariat,
                    "orgs_before": list(before.orgs) if before else [],
                    "orgs_after": orgs,
                }
            )
            if before is not None:
                known.append((name, object_id))
            objects.append(
                {
                    "object_type": name,
                    "object_id": object_id,
                    "generic": generic,
                    "secretariat": secretariat,
                    "orgs": orgs,
                    "latest_seq": seq,
                }
            )
    head.last_seq = seq
    session.add(head)
    await session.flush()
    if entries:
        # Core inserts in bulk: a State's decision may record thousands of objects, all
        # while this unit holds the feed's lock.
        connection = await session.connection()
        for name in {name for name, _ in known}:
            ids = [object_id for kind, object_id in known if kind == name]
            for chunk in chunks(ids):
                await connection.execute(
                    delete(FeedObject).where(
                        col(FeedObject.object_type) == name, col(FeedObject.object_id).in_(chunk)
                    )
                )
        for start in range(0, len(entries), INSERT_BATCH):
            await connection.execute(insert(ChangeEntry), entries[start : start + INSERT_BATCH])
            await connection.execute(insert(FeedObject), objects[start : start + INSERT_BATCH])
        # The ORM must not keep stale copies of the rows just replaced.
        for row in list(session.identity_map.values()):
            if isinstance(row, FeedObject):
                session.expunge(row)
    recorded = [ChangeEntry(**entry) for entry in entries]  # type: ignore[arg-type]
    for listener in LISTENERS:
        await listener(session, recorded)


async def sweep(session: AsyncSession) -> None:
    """Record what changed by the clock alone, if anything did (a feed read calls this:
    an expiry's revoke is served even when nothing else was written since)."""
    if await time_changed(session, clock.now()):
        await record(session)


feed.install(record)

# The webhook deliveries listen to every unit recorded, in every process that records.
importlib.import_module("ctcp.changes.webhooks")
