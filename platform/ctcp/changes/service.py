"""The change feed: `GET /api/v1/changes`, one page of what changed since a cursor.

Each entry is decided for the caller at the moment it is served:

- `upsert` with the object, when the caller may read it now — decided by the object's
  own feature, through its scope function and read models, as its lists would;
- `revoke` with the id alone, when it may not, but could before this change or after
  it (the recorder kept who could: any Compact entity, or the organizations tied to
  the object) — so a caller never learns from the feed of something it could never see;
- nothing at all otherwise, though the cursor moves past it.

A cursor is a position in the feed's numbering, which follows commit order, so it
survives restarts and holds across instances. Retention removes superseded entries (and
those of objects nobody may read any more) older than `CTCP_CHANGE_FEED_RETENTION_DAYS`;
a cursor from before what was removed is answered 410: clear the copy and start again
without a cursor. Without a cursor, the feed starts from its first entry: every object
still has its latest entry, so that reading alone rebuilds a full copy.
"""

import asyncio
import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer
from sqlalchemy import delete, exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import Outcome
from ctcp.authz.guard import Access
from ctcp.changes import recorder
from ctcp.changes.kinds import KINDS, readable
from ctcp.changes.models import ChangeEntry, FeedHead, FeedObject
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.core.errors import GoneError, ValidationError
from ctcp.organizations.models import Organization

logger = logging.getLogger("ctcp.changes")

CURSOR_PREFIX = "c1."
# How many entries one request looks through, at most, to fill a page: entries the
# caller may not see are passed over but cost a read.
SCAN_FACTOR = 5


class ChangeItem(BaseModel):
    seq: int
    type: str
    id: uuid.UUID
    op: Literal["upsert", "revoke"]
    at: datetime
    object: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _without_empty_object(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A revoke carries no `object` member at all."""
        data: dict[str, Any] = handler(self)
        if data.get("object") is None:
            data.pop("object", None)
        return data


class ChangePage(BaseModel):
    items: list[ChangeItem]
    next_cursor: str
    # True when the page stopped before the feed's head: ask again at once.
    has_more: bool


@dataclass(frozen=True)
class FeedRequest:
    cursor: str | None = None
    types: frozenset[str] | None = None  # None: every kind the caller reads
    limit: int = 50


@dataclass(frozen=True)
class Position:
    """What a cursor holds: where the reader stands, the types it asked for (None: all)
    and the kinds it was actually served (those of the types it was granted)."""

    seq: int
    asked: frozenset[str] | None = None
    served: frozenset[str] | None = None  # None: a cursor of no particular kinds
    purges: int | None = None  # the retention passes before it was issued


def _names(kinds: frozenset[str] | None) -> str:
    return "*" if kinds is None else ",".join(sorted(kinds))


def _kinds(text: str) -> frozenset[str] | None:
    return None if text == "*" else frozenset(t for t in text.split(",") if t)


def encode_cursor(
    seq: int,
    asked: frozenset[str] | None = None,
    served: frozenset[str] | None = None,
    purges: int = 0,
) -> str:
    raw = str(seq) if served is None else f"{seq}|{_names(asked)}|{_names(served)}|{purges}"
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode(cursor: str | None) -> Position | None:
    """A cursor's position (None: no cursor); 422 for anything this feed did not make."""
    if cursor is None:
        return None
    refused = ValidationError("Not a cursor of this feed.", loc=["query", "cursor"])
    if not cursor.startswith(CURSOR_PREFIX):
        raise refused
    raw = cursor[len(CURSOR_PREFIX) :]
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        parts = text.split("|")
        seq = int(parts[0])
        purges = int(parts[3]) if len(parts) == 4 else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refused from None
    if seq < 0 or len(parts) not in (1, 4) or (purges is not None and purges < 0):
        raise refused
    if len(parts) == 1:
        return Position(seq)
    asked, served = _kinds(parts[1]), _kinds(parts[2])
    if served is None or not served <= KINDS.keys() or not (asked or set()) <= KINDS.keys():
        raise refused
    return Position(seq, asked, served, purges)


def decode_cursor(cursor: str | None) -> int | None:
    position = decode(cursor)
    return None if position is None else position.seq


def parse_types(raw: str | None) -> frozenset[str] | None:
    """`?types=publication,need`: the kinds wanted, each one the feed carries."""
    if raw is None or not raw.strip():
        return None
    wanted = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(wanted - KINDS.keys())
    if unknown:
        raise ValidationError(
            f"Unknown types: {', '.join(unknown)} (known: {', '.join(sorted(KINDS))}).",
            loc=["query", "types"],
        )
    return wanted


def _could_read(entry: ChangeEntry, organization: Organization) -> bool:
    """Whether the caller could read the object just before or just after this entry."""
    return recorder.reads(entry, organization, after=True) or recorder.reads(
        entry, organization, after=False
    )


async def _decide(
    session: AsyncSession,
    readers: dict[str, Access],
    organization: Organization,
    entries: Sequence[ChangeEntry],
) -> list[ChangeItem]:
    by_kind: dict[str, set[uuid.UUID]] = {}
    for entry in entries:
        by_kind.setdefault(entry.object_type, set()).add(entry.object_id)
    objects: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
    for name, ids in by_kind.items():
        kind, access = KINDS[name], readers[name]
        rows = await readable(session, kind, access, ids)
        rendered = await kind.render(session, access, list(rows.values()))
        for row, model in zip(rows.values(), rendered, strict=True):
            objects[(name, row.id)] = model.model_dump(mode="json")
    items = []
    for entry in entries:
        content = objects.get((entry.object_type, entry.object_id))
        if content is not None:
            op: Literal["upsert", "revoke"] = "upsert"
        elif _could_read(entry, organization):
            op = "revoke"
        else:
            continue
        items.append(
            ChangeItem(
                seq=entry.seq,
                type=entry.object_type,
                id=entry.object_id,
                op=op,
                at=entry.at,
                object=content,
            )
        )
    return items


async def read_changes(
    session: AsyncSession, access: Access, readers: dict[str, Access], request: FeedRequest
) -> ChangePage:
    """One page of the caller's changes after `request.cursor`, audited as `change.list`.

    `readers` holds the caller's grant on each kind's resource; a kind without one is
    not in the caller's feed at all."""
    position_at = decode(request.cursor)
    after = None if position_at is None else position_at.seq
    wanted = request.types if request.types is not None else frozenset(KINDS)
    granted = frozenset(readers)
    if position_at is not None and position_at.served is not None:
        asked = position_at.asked if position_at.asked is not None else frozenset(KINDS)
        if not wanted <= asked:
            # It went past entries of the types it was not asked for, unread.
            raise ValidationError(
                "This cursor was made for fewer types: resume with its `types` (or fewer), "
                "or start again without a cursor.",
                loc=["query", "cursor"],
            )
        served = position_at.served
        lost, gained = (served & wanted) - granted, (wanted & granted) - served
        if lost or gained:
            # What the caller may read changed under its copy (its client's scopes, the
            # policy): a kind it holds copies of and may no longer read would never be
            # revoked, a kind newly opened was passed over. Only a fresh read is right.
            _refuse(
                session,
                access,
                {"reason": "access changed", "lost": sorted(lost), "gained": sorted(gained)},
                "What you may read changed since this cursor: clear your copy and read the "
                "feed again without a cursor.",
            )
    await recorder.sweep(session)
    # The head's numbers as plain values: the row is read again below, and an ORM
    # object refreshed there would change these under this read.
    head_at_start = await _head_numbers(session)
    await _refuse_if_purged(session, access, position_at, head_at_start)
    if after is not None and after > head_at_start.last_seq:
        raise ValidationError("Not a cursor of this feed.", loc=["query", "cursor"])
    effective = wanted & granted
    kinds = sorted(effective)
    organization = access.organization
    position = after or 0
    items: list[ChangeItem] = []
    more = False
    for _ in range(SCAN_FACTOR):
        statement = (
            select(ChangeEntry)
            .where(col(ChangeEntry.seq) > position, col(ChangeEntry.object_type).in_(kinds))
            .order_by(col(ChangeEntry.seq))
            .limit(request.limit)
        )
        entries = list((await session.exec(statement)).all()) if kinds else []
        if not entries:
            more = False
            break
        decided = await _decide(session, readers, organization, entries)
        room = request.limit - len(items)
        if len(decided) > room:
            decided = decided[:room]
            position = decided[-1].seq
            items.extend(decided)
            more = True
            break
        items.extend(decided)
        position = entries[-1].seq
        more = len(entries) == request.limit
        if len(items) >= request.limit or not more:
            break
    # Retention may have run while this page was read (PostgreSQL reads each statement
    # afresh): entries past the cursor may be gone, so this page may not be whole.
    head_now = await _head_numbers(session)
    await _refuse_if_purged(session, access, position_at, head_now)
    if position_at is None and head_now.purges != head_at_start.purges:
        # A read begun without a cursor is whole whatever was removed before it began;
        # what a pass removed while it read may be past its first pages: start again.
        _refuse(
            session,
            access,
            {"reason": "retention ran during the first read"},
            "The feed applied its retention while this read began: read again without a cursor.",
        )
    if not more:
        # Nothing further of the caller's kinds up to the head read when this page began
        # (everything numbered up to it was committed then): resume from there. Not the
        # head as it is now: entries committed while the page was read may lie between.
        position = max(position, head_at_start.last_seq)
    audit.record(
        session,
        access.audit,
        "change.list",
        object_type="change",
        details={
            "from": after,
            "to": position,
            "upserts": [f"{i.type}:{i.id}" for i in items if i.op == "upsert"],
            "revokes": [f"{i.type}:{i.id}" for i in items if i.op == "revoke"],
        },
        read=True,
    )
    return ChangePage(
        items=items,
        next_cursor=encode_cursor(position, request.types, effective, head_now.purges),
        has_more=more,
    )


@dataclass(frozen=True)
class HeadNumbers:
    last_seq: int
    purged_through: int
    purges: int


async def _head_numbers(session: AsyncSession) -> HeadNumbers:
    """The feed head's numbers as committed now (read afresh, not from an ORM object)."""
    row = (
        await session.exec(
            select(FeedHead.last_seq, FeedHead.purged_through, FeedHead.purges).where(
                col(FeedHead.id) == 1
            )
        )
    ).one()
    return HeadNumbers(int(row[0]), int(row[1]), int(row[2]))


async def _refuse_if_purged(
    session: AsyncSession, access: Access, position: Position | None, head: HeadNumbers
) -> None:
    """410, audited, for a cursor that retention may have passed: issued before a pass
    that removed entries after it. (No pass since it was issued: it is whole, however
    far behind the removed numbers it stands — a read begun without a cursor.)"""
    if position is None or position.seq >= head.purged_through:
        return
    if position.purges is not None and position.purges == head.purges:
        return
    _refuse(
        session,
        access,
        {"reason": "cursor past retention", "cursor": position.seq},
        "This cursor is older than the feed keeps: clear your copy and read the feed "
        "again without a cursor (or resynchronise from the lists).",
    )


def _refuse(session: AsyncSession, access: Access, details: dict[str, Any], detail: str) -> None:
    """410 Gone, audited as a denied `change.list`: the caller must start again."""
    audit.record(
        session,
        access.audit,
        "change.list",
        outcome=Outcome.DENIED,
        object_type="change",
        details=details,
    )
    raise GoneError(detail)


async def purge(session: AsyncSession, older_than: datetime) -> int:
    """Remove entries older than `older_than` that a later entry of the same object
    supersedes, and the latest entries of objects no Compact entity may read any more.
    A cursor from before the highest removed number is answered 410 from then on."""
    head = await recorder.lock_head(session)
    later = aliased(ChangeEntry)
    superseded = exists().where(
        col(later.object_type) == col(ChangeEntry.object_type),
        col(later.object_id) == col(ChangeEntry.object_id),
        col(later.seq) > col(ChangeEntry.seq),
    )
    unread = exists().where(
        col(FeedObject.object_type) == col(ChangeEntry.object_type),
        col(FeedObject.object_id) == col(ChangeEntry.object_id),
        col(FeedObject.latest_seq) == col(ChangeEntry.seq),
        col(FeedObject.generic).is_(False),
        col(FeedObject.secretariat).is_(False),
        func.json_array_length(col(FeedObject.orgs)) == 0,
    )
    condition = (col(ChangeEntry.at) < older_than) & or_(superseded, unread)
    highest = (await session.exec(select(func.max(ChangeEntry.seq)).where(condition))).one()
    if highest is None:
        return 0
    removed = await session.exec(delete(ChangeEntry).where(condition))
    head.purged_through = max(head.purged_through, int(highest))
    head.purges += 1
    session.add(head)
    return int(removed.rowcount or 0)


async def backfill(session: AsyncSession) -> int:
    """Touch every object the feed has never recorded (data from before the feed, a bulk
    load): the recorder gives each its first entry at this unit's commit."""
    count = 0
    for name, kind in KINDS.items():
        known = select(col(FeedObject.object_id)).where(col(FeedObject.object_type) == name)
        ids = (
            await session.exec(select(col(kind.model.id)).where(col(kind.model.id).not_in(known)))
        ).all()
        feed.touch(session, name, ids)
        count += len(ids)
    return count


async def sweep_forever(database: Database, every_seconds: float) -> None:
    """Record what changed by the clock alone (expiries, entries turning stale) every
    `every_seconds` until cancelled, so their revokes reach webhook receivers even when
    nobody writes or reads the feed. A failed pass is logged and the loop goes on."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            async with database.transaction() as session:
                await recorder.sweep(session)
        except Exception:
            logger.exception("change-feed sweep failed")


async def purge_forever(database: Database, retention_days: int, every_seconds: float) -> None:
    """Apply retention every `every_seconds` until cancelled; a failed pass is logged."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            async with database.transaction() as session:
                removed = await purge(session, clock.now() - timedelta(days=retention_days))
        except Exception:
            logger.exception("change-feed retention pass failed")
            continue
        if removed:
            logger.info("change feed: %d entries past retention removed", removed)
