"""Recording audit events in a hash chain, and verifying the chain."""

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncGenerator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, String, func, insert, type_coerce, update
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit.models import AuditChainHead, AuditEvent
from ctcp.core.clock import clock
from ctcp.core.db import (
    Database,
    make_engine,
    on_after_commit,
    on_after_rollback,
    on_before_commit,
)

GENESIS_HASH = "0" * 64
PENDING_KEY = "ctcp.audit_pending"
READS_KEY = "ctcp.audit_reads"
WRITER_KEY = "ctcp.audit_writer"


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True)
class AuditContext:
    """Who acts and from where: carried from the request into every event."""

    user_id: uuid.UUID | None = None
    client_id: str | None = None
    organization: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def as_user(self, user_id: uuid.UUID, organization: str | None) -> "AuditContext":
        return AuditContext(
            user_id=user_id,
            client_id=None,
            organization=organization,
            ip=self.ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
        )

    def as_client(self, client_id: str, organization: str | None) -> "AuditContext":
        return AuditContext(
            user_id=None,
            client_id=client_id,
            organization=organization,
            ip=self.ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
        )


@dataclass
class _PendingEvent:
    at: datetime
    context: AuditContext
    action: str
    outcome: Outcome
    object_type: str | None
    object_id: str | None
    details: dict[str, Any] = field(default_factory=dict)


def _cut(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


def _bounded(context: AuditContext) -> AuditContext:
    """The context with every field cut to its column (client-supplied values can be long)."""
    return AuditContext(
        user_id=context.user_id,
        client_id=_cut(context.client_id, 64),
        organization=_cut(context.organization, 32),
        ip=_cut(context.ip, 64),
        user_agent=_cut(context.user_agent, 400),
        request_id=_cut(context.request_id, 64),
    )


def record(
    session: AsyncSession,
    context: AuditContext,
    action: str,
    *,
    outcome: Outcome = Outcome.ALLOWED,
    object_type: str | None = None,
    object_id: object | None = None,
    details: Mapping[str, Any] | None = None,
    read: bool = False,
) -> None:
    """Add an event to the session's transaction; it is chained and written at commit.

    Denials and errors are written even when the transaction rolls back; an allowed
    act's event goes only with the change it records. A `read` changes nothing: where
    the app runs a group writer, its event is committed with other requests' reads
    right after this transaction, and still before the response leaves.
    """
    event = _PendingEvent(
        at=clock.now(),
        context=_bounded(context),
        action=action[:64],
        outcome=outcome,
        object_type=None if object_type is None else object_type[:40],
        # Taken from the request as sent (a path parameter, say): it must fit its column.
        object_id=None if object_id is None else str(object_id)[:64],
        details=dict(details or {}),
    )
    if read and outcome is Outcome.ALLOWED and WRITER_KEY in session.info:
        session.info.setdefault(READS_KEY, []).append(event)
        on_after_commit(session, _write_reads)
        return
    pending: list[_PendingEvent] = session.info.setdefault(PENDING_KEY, [])
    pending.append(event)
    on_before_commit(session, write_pending)
    if outcome is not Outcome.ALLOWED:
        on_after_rollback(session, _keep_refusals)


async def _write_reads(session: AsyncSession) -> None:
    """Hand this request's read events to the group writer and wait until they are durable."""
    reads: list[_PendingEvent] = session.info.pop(READS_KEY, [])
    if reads:
        writer: AuditWriter = session.info[WRITER_KEY]
        await writer.write(reads)


async def _keep_refusals(session: AsyncSession) -> None:
    pending: list[_PendingEvent] = session.info.get(PENDING_KEY, [])
    session.info[PENDING_KEY] = [item for item in pending if item.outcome is not Outcome.ALLOWED]
    on_before_commit(session, write_pending)


HASHED_FIELDS = (
    "id",
    "at",
    "actor_user_id",
    "actor_client_id",
    "actor_organization",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "details",
    "prev_hash",
)


def canonical_bytes(row: Mapping[str, Any]) -> bytes:
    """The exact bytes an event's hash covers: every field and the previous hash."""
    payload = {name: row[name] for name in HASHED_FIELDS}
    payload["at"] = row["at"].isoformat(timespec="microseconds")
    if payload["actor_user_id"] is not None:
        payload["actor_user_id"] = str(payload["actor_user_id"])
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(row)).hexdigest()


async def write_pending(session: AsyncSession) -> None:
    """Chain the session's pending events onto the head, in the session's transaction."""
    pending: list[_PendingEvent] = session.info.pop(PENDING_KEY, [])
    if pending:
        await _append(await session.connection(), pending)


_HEAD = (
    select(AuditChainHead.last_id, AuditChainHead.last_hash)
    .where(AuditChainHead.id == 1)
    .with_for_update()
)


async def _append(
    connection: AsyncConnection,
    pending: list[_PendingEvent],
    *,
    head: tuple[int, str] | None = None,
) -> None:
    """Append events under the chain head's row lock (taken here unless `head` says so).

    One SELECT ... FOR UPDATE, one multi-row INSERT, one UPDATE: the lock is held for
    three statements and the commit that follows, whatever the number of events.
    """
    last_id, last_hash = head or (await connection.execute(_HEAD)).one()
    rows = []
    for item in pending:
        last_id += 1
        row: dict[str, Any] = {
            "id": last_id,
            "at": item.at,
            "actor_user_id": item.context.user_id,
            "actor_client_id": item.context.client_id,
            "actor_organization": item.context.organization,
            "action": item.action,
            "object_type": item.object_type,
            "object_id": item.object_id,
            "outcome": item.outcome.value,
            "ip": item.context.ip,
            "user_agent": item.context.user_agent,
            "request_id": item.context.request_id,
            "details": json.dumps(item.details, sort_keys=True, default=str),
            "prev_hash": last_hash,
        }
        row["hash"] = last_hash = compute_hash(row)
        rows.append(row)
    await connection.execute(insert(AuditEvent), rows)
    await connection.execute(
        update(AuditChainHead)
        .where(col(AuditChainHead.id) == 1)
        .values(last_id=last_id, last_hash=last_hash)
    )


class AuditWriter:
    """Group commit for read events: many requests' events made durable in one transaction.

    Each caller waits until the transaction holding its events has committed, so a
    response never leaves before its audit event is on disk; nothing is buffered past
    that point, and a failed commit fails every request that was waiting on it.
    """

    def __init__(self, database: Database, *, max_batch: int = 256) -> None:
        self.database = database
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[list[_PendingEvent], asyncio.Future[None]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        # Its own small pool: requests that hold every pooled connection must not keep
        # the writer that they are all waiting for from getting one.
        self.engine = make_engine(database.url, pool_size=2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ctcp-audit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("audit writer stopped"))
        await self.engine.dispose()

    async def write(self, events: list[_PendingEvent]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((events, future))
        await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            try:
                # A Core connection, not an ORM session: this loop is on every read's path.
                async with self.engine.begin() as connection:
                    # Lock the chain head first, then take every event that arrived while
                    # waiting for it (another worker's commit, its fsync): they ride this
                    # commit instead of waiting for the next one.
                    head = (await connection.execute(_HEAD)).one()
                    while len(batch) < self.max_batch and not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                    events = [event for events, _ in batch for event in events]
                    await _append(connection, events, head=(head[0], head[1]))
            except Exception as error:  # handed to every waiting request
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    checked: int
    first_invalid_id: int | None
    # The chain head's position when the walk began, and the hashes it was asked to note.
    end: int = 0
    end_hash: str = GENESIS_HASH
    hashes: dict[int, str] = field(default_factory=dict)
    problem: str | None = None


# What verification reads: the hashed fields and the stored hash, as plain rows. The
# actor's id is read as stored (SQLite: 32 hex digits) and written out as the hash spells
# it, instead of being parsed into a UUID first: a tenth of the walk's time at 1M events.
_CHAIN_COLUMNS = [
    type_coerce(col(AuditEvent.actor_user_id), String).label("actor_user_id")
    if name == "actor_user_id"
    else col(getattr(AuditEvent, name))
    for name in (*HASHED_FIELDS, "hash")
]
_ACTOR = HASHED_FIELDS.index("actor_user_id")


def _actor_text(value: Any) -> str | None:
    """The actor's id as `canonical_bytes` writes it (str of a UUID)."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 32:
        text = value.lower()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


async def _chain_batches(
    session: AsyncSession, *, after: int, until: int, batch: int = 10_000
) -> AsyncGenerator[Sequence[Row[Any]], None]:
    """Rows of the chain up to `until` in keyset batches, each fetched while the previous
    one is being hashed (Core rows, no ORM objects: verification's cost is per row)."""

    # The session's connection, used directly: the ORM's result handling costs per row.
    connection = await session.connection()

    async def fetch(after: int) -> Sequence[Row[Any]]:
        statement = (
            sa_select(*_CHAIN_COLUMNS)
            .where(col(AuditEvent.id) > after, col(AuditEvent.id) <= until)
            .order_by(col(AuditEvent.id))
            .limit(batch)
        )
        return (await connection.execute(statement)).all()

    rows = await fetch(after)
    while rows:
        following = asyncio.ensure_future(fetch(rows[-1][0])) if len(rows) == batch else None
        try:
            yield rows
        except GeneratorExit:
            if following is not None:
                # Stopped early (a bad event): leave no query in flight on the session.
                with contextlib.suppress(Exception):
                    await following
            raise
        except BaseException:
            if following is not None:
                following.cancel()
            raise
        rows = await following if following is not None else []


async def chain_length(session: AsyncSession) -> int:
    head = await session.get(AuditChainHead, 1)
    return head.last_id if head else 0


async def chain_head(session: AsyncSession) -> tuple[int, str]:
    """The chain head as stored: the last event's id and hash."""
    statement = select(AuditChainHead.last_id, AuditChainHead.last_hash).where(
        AuditChainHead.id == 1
    )
    row = (await session.exec(statement)).first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


async def event_hash(session: AsyncSession, event_id: int) -> str | None:
    """The stored hash of one event (None when there is no such event)."""
    statement = select(AuditEvent.hash).where(col(AuditEvent.id) == event_id)
    return (await session.exec(statement)).first()


async def event_time(session: AsyncSession, event_id: int) -> datetime | None:
    """When one event was recorded (None when there is no such event)."""
    statement = select(AuditEvent.at).where(col(AuditEvent.id) == event_id)
    return (await session.exec(statement)).first()


async def _rows_outside_the_chain(session: AsyncSession) -> tuple[int, int] | None:
    """The first event that lies outside 1..head, and the head, or None when none does.

    The app's role may INSERT any event id and UPDATE the head: a row past the head (or
    a head moved back over rows) would show in lists and exports but not in the walk.
    Head, lowest and highest id are read in one statement, so in one snapshot: an event
    committed meanwhile moves the head with it and is not mistaken for such a row.
    """
    head_id = sa_select(col(AuditChainHead.last_id)).where(col(AuditChainHead.id) == 1)
    bounds = sa_select(
        head_id.scalar_subquery(),
        sa_select(func.min(col(AuditEvent.id))).scalar_subquery(),
        sa_select(func.max(col(AuditEvent.id))).scalar_subquery(),
    )
    connection = await session.connection()
    head, lowest, highest = (await connection.execute(bounds)).one()
    head = int(head or 0)
    if lowest is not None and lowest < 1:
        return int(lowest), head
    if highest is None or highest <= head:
        return None
    first = sa_select(func.min(col(AuditEvent.id))).where(col(AuditEvent.id) > head)
    return int((await connection.execute(first)).scalar_one()), head


async def verify_chain(
    session: AsyncSession,
    *,
    progress: Callable[[int], None] | None = None,
    after: tuple[int, str] = (0, GENESIS_HASH),
    hashes_at: Collection[int] = (),
) -> VerifyResult:
    """Walk the chain: each event's hash must match its content and link to the previous.

    The head is read first and the walk stops at it, so events committed while the walk
    runs are left for the next verification instead of looking like tampering; rows
    outside the chain (an id past the head, or below 1) fail it. `after`
    starts the walk past an event already vouched for (its id and hash); the hashes of
    the events in `hashes_at` are noted on the way, for the signed checkpoints.
    """
    head = await session.get(AuditChainHead, 1)
    if head is None:
        return VerifyResult(
            valid=False, checked=0, first_invalid_id=1, problem="the chain head is missing"
        )
    end, end_hash = head.last_id, head.last_hash
    start, previous_hash = after
    if end < start:
        return VerifyResult(
            valid=False,
            checked=0,
            first_invalid_id=end + 1,
            end=end,
            problem=f"the chain head went back to event {end}, before event {start}",
        )
    watched = frozenset(hashes_at)
    hashes: dict[int, str] = {}
    expected_id = start + 1
    checked = 0
    batches = _chain_batches(session, after=start, until=end)
    try:
        async for rows in batches:
            for row in rows:
                fields = dict(zip(HASHED_FIELDS, row, strict=False))
                fields["actor_user_id"] = _actor_text(row[_ACTOR])
                stored_hash = row[-1]
                if (
                    fields["id"] != expected_id
                    or fields["prev_hash"] != previous_hash
                    or compute_hash(fields) != stored_hash
                ):
                    return VerifyResult(
                        valid=False,
                        checked=checked,
                        first_invalid_id=fields["id"],
                        end=end,
                        hashes=hashes,
                        problem=f"event {fields['id']} does not match its hash or its link",
                    )
                if watched and expected_id in watched:
                    hashes[expected_id] = stored_hash
                previous_hash = stored_hash
                expected_id += 1
                checked += 1
            if progress is not None:
                progress(len(rows))
    finally:
        await batches.aclose()
    if expected_id - 1 != end or previous_hash != end_hash:
        # Events missing from the end (or a head that moved by hand) break the chain too.
        return VerifyResult(
            valid=False,
            checked=checked,
            first_invalid_id=expected_id,
            end=end,
            hashes=hashes,
            problem=f"the chain head names event {end}, but the chain ends otherwise",
        )
    outside = await _rows_outside_the_chain(session)
    if outside is not None:
        stray, current = outside
        return VerifyResult(
            valid=False,
            checked=checked,
            first_invalid_id=stray,
            end=end,
            hashes=hashes,
            problem=(
                f"event {stray} lies outside the chain, whose head is event {current}: "
                "rows were added past the head, or the head was moved back"
            ),
        )
    return VerifyResult(
        valid=True,
        checked=checked,
        first_invalid_id=None,
        end=end,
        end_hash=end_hash,
        hashes=hashes,
    )
