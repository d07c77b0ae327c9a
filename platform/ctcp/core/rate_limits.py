"""Rate limits shared by every worker and instance: counters in the database.

A sliding-window counter (the previous fixed window's count, weighted by how much of it
still overlaps the sliding window, plus the current one's): one row per key, moved on
by a single atomic upsert, so two instances counting the same client never lose a hit.
Refused requests are taken back off the count, so a client that keeps knocking while
limited is let in again when `Retry-After` says.

A process does not write the row for every request. It reserves a few hits at once (a
lease: counted in the row at once, so every instance sees them) and serves requests
from the lease until it is used up, a quarter of a second has passed, or the window
turns. A lease is at most a sixteenth of what the row says is left (`LEASE_SHARE`) and
at most `MAX_LEASE`: with fewer than 32 left, every request is counted in the database
on its own, as before, so limits stay exact however many instances count. Unused hits
go back when the process next counts the key (and at shutdown); a process that dies
holding a lease has only counted too much, never too little. A count stamped with a
window that another instance has already left never moves the row back: it is counted
in the newer window.

Libraries considered: `limits` stores only in memory, Redis, Memcached or MongoDB, and
`pyrate-limiter`'s SQL buckets need a second, synchronous driver and keep a row per
hit; the platform's shared state lives in its own database (docs/operations.md,
"Several instances").
"""

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Integer, case, delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.core.clock import clock
from ctcp.core.db import Database

logger = logging.getLogger("ctcp.rate_limits")

# Every this many counting transactions, a process sweeps counters no window still reads.
SWEEP_EVERY = 1000
# A lease is at most this share of what a key has left, and at most MAX_LEASE hits.
LEASE_SHARE = 16
MAX_LEASE = 64
# A lease is served from for at most this long (seconds), then counted again.
LEASE_SECONDS = 0.25
# Keys whose headroom a process remembers (to size their next lease) before it forgets all.
MAX_KEYS = 10_000


class RateLimitCounter(SQLModel, table=True):
    __tablename__ = "rate_limit_counters"

    key: str = Field(max_length=128, primary_key=True)
    # The current fixed window: seconds since the epoch // window length.
    window_index: int = Field(sa_type=BigInteger)
    hits: int = Field(sa_type=Integer)
    previous_hits: int = Field(sa_type=Integer)
    # Refusals in the current window; the first of them is audited, the rest counted.
    refused: int = Field(default=0, sa_type=Integer)


COUNTERS = RateLimitCounter.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Limit:
    key: str  # e.g. "client:<client_id>" or "address:<ip>"
    requests: int  # allowed per window


@dataclass(frozen=True)
class Refusal:
    key: str
    retry_after: int  # whole seconds, at least 1
    first_in_window: bool  # audit this one; later refusals of the window only count


def _wait_seconds(previous: int, hits: int, allowed: int, elapsed: float, window: int) -> int:
    """Seconds until a request would pass, counting this one, if nobody else calls."""
    if hits <= allowed and previous > 0:
        # Still this window: wait for the previous window's weight to fade enough.
        fraction = 1 - (allowed - hits) / previous
        seconds = (fraction - elapsed) * window
    else:
        # Next window, where this window's other hits become the weighted part.
        others = max(hits - 1, 1)
        fraction = max(0.0, 1 - (allowed - 1) / others)
        seconds = (1 - elapsed + fraction) * window
    return max(1, math.ceil(seconds))


@dataclass
class _Lease:
    """Hits of `window` this process has counted in the row but not served yet."""

    window: int
    left: int
    expires: float  # time.monotonic()


@dataclass(frozen=True)
class _Ask:
    """What one count reserves for one key."""

    key: str
    allowed: int  # requests per window
    reserved: int  # hits the new lease holds, if all are granted
    held: int  # of those, already counted in the row: an expired lease's, of this window
    stale: int  # unused hits of an expired lease of the window before: off that window

    @property
    def new_hits(self) -> int:
        """What this count adds to the row."""
        return self.reserved - self.held


class _Row(NamedTuple):
    """A counter as the upsert left it (this count's reservation included)."""

    hits: int
    previous: int


@dataclass(frozen=True)
class _Grant:
    """What a key was granted, judged on its counter's row."""

    ask: _Ask
    row: _Row
    granted: int  # hits of the new lease; 0 refuses the request
    headroom: int  # what is left beyond the lease: the next lease's size follows it

    @property
    def refused(self) -> bool:
        return self.granted == 0

    @property
    def surplus(self) -> int:
        """Reserved hits not granted, to give back to the row."""
        return self.ask.reserved - self.granted


def _grant(ask: _Ask, row: _Row, elapsed: float) -> _Grant:
    """The lease a key gets: at most a sixteenth of what is left, as the row says now (with
    fewer than 32 left, one hit per count, so no process holds what another needs); none
    when nothing is left."""
    room = math.floor(ask.allowed - (row.previous * (1 - elapsed) + row.hits - ask.reserved))
    granted = 0 if room < 1 else min(ask.reserved, max(1, room // LEASE_SHARE))
    return _Grant(ask, row, granted, max(0, room - granted))


class _WindowMoved(Exception):
    """Another instance has counted in a later window: count again, in that window."""

    def __init__(self, window: int) -> None:
        super().__init__(window)
        self.window = window


class RateLimiter:
    """Counts requests against limits, reserving hits in the shared counters a few at a time."""

    def __init__(self, *, window_seconds: int) -> None:
        self.window_seconds = window_seconds
        self._since_sweep = 0
        self._leases: dict[str, _Lease] = {}
        # What each key had left after its last count: the next lease's size follows it.
        self._headroom: dict[str, int] = {}
        self._refills: dict[str, asyncio.Future[None]] = {}
        # The latest window any instance has counted in, as far as this process has seen.
        self._latest_window = 0

    def _usable(self, key: str, window: int, now: float) -> bool:
        lease = self._leases.get(key)
        return (
            lease is not None and lease.window == window and lease.left > 0 and now < lease.expires
        )

    async def hit(self, database: Database, limits: Sequence[Limit]) -> Refusal | None:
        """Count one request against every limit; the tightest refusal, or None to go on.

        Served from this process's leases when they hold a hit for every key; otherwise
        the missing keys are counted in a short transaction of their own (committed even
        when the request is refused: the refusal's bookkeeping must stay), before the
        request's own work begins.
        """
        by_key = {limit.key[:128]: limit.requests for limit in limits}
        while by_key:
            now = clock.now().timestamp()
            window = int(now // self.window_seconds)
            if window < self._latest_window:  # another instance's clock is ahead of this one
                window = self._latest_window
                now = float(window * self.window_seconds)
            moment = time.monotonic()
            empty = {k: n for k, n in by_key.items() if not self._usable(k, window, moment)}
            if not empty:
                for key in by_key:
                    self._leases[key].left -= 1
                return None
            pending = [self._refills[key] for key in empty if key in self._refills]
            if pending:  # another request of this process is counting these keys: share it
                await asyncio.wait(pending)
                continue
            try:
                refusal = await self._count(database, empty, now, window)
            except _WindowMoved as moved:
                self._latest_window = max(self._latest_window, moved.window)
                continue
            if refusal is not None:
                return refusal
        return None

    def _lease_size(self, key: str) -> int:
        headroom = self._headroom.get(key)
        if headroom is None:
            return 1  # first sight of the key: count exactly until it is known
        return max(1, min(MAX_LEASE, headroom // LEASE_SHARE))

    async def _count(
        self, database: Database, needed: Mapping[str, int], now: float, window: int
    ) -> Refusal | None:
        """Reserve a lease for every key in `needed` (one upsert); refuse if one has none left."""
        keys = sorted(needed)  # one order everywhere: concurrent upserts cannot deadlock
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._refills[key] = done
        try:
            return await self._reserve(database, needed, keys, now, window)
        finally:
            for key in keys:
                self._refills.pop(key, None)
            done.set_result(None)

    async def _reserve(
        self,
        database: Database,
        needed: Mapping[str, int],
        keys: list[str],
        now: float,
        window: int,
    ) -> Refusal | None:
        """In one transaction: count the reservations, take stale leases' hits back, grant,
        give back what was not granted; then hold the grants as leases."""
        elapsed = now / self.window_seconds - window
        asks = [self._ask(key, needed[key], window) for key in keys]
        async with database.transaction() as counting:
            rows = await _count_reservations(counting, asks, window)
            rows = await _take_back_stale(counting, asks, rows, window)
            grants = [_grant(ask, rows[ask.key], elapsed) for ask in asks]
            self._headroom.update((grant.ask.key, grant.headroom) for grant in grants)
            refusals = await _give_back_surplus(counting, grants, window)
            await self._maybe_sweep(counting, window)
        expires = time.monotonic() + LEASE_SECONDS
        for grant in grants:
            self._leases[grant.ask.key] = _Lease(window, grant.granted, expires)
        if len(self._headroom) > MAX_KEYS:  # a sizing hint only: many addresses, start over
            self._headroom.clear()
        return self._refusal(grants, refusals, elapsed)

    def _ask(self, key: str, allowed: int, window: int) -> _Ask:
        """What to reserve for `key`: an expired lease's unused hits of this window are folded
        into the new one; those of the window before are taken off what that window counted."""
        lease = self._leases.get(key)
        held = lease.left if lease is not None and lease.window == window else 0
        stale = lease.left if lease is not None and lease.window == window - 1 else 0
        return _Ask(key, allowed, max(self._lease_size(key), held), held, stale)

    def _refusal(
        self, grants: Sequence[_Grant], refusals: Mapping[str, int], elapsed: float
    ) -> Refusal | None:
        """The refused key that frees up last, if any key was refused."""
        waits = [
            (
                grant.ask.key,
                # As if this one request had been counted on its own: the hits before it, plus it.
                _wait_seconds(
                    grant.row.previous,
                    grant.row.hits - grant.ask.reserved + 1,
                    grant.ask.allowed,
                    elapsed,
                    self.window_seconds,
                ),
            )
            for grant in grants
            if grant.refused
        ]
        if not waits:
            return None
        key, retry_after = max(waits, key=lambda wait: wait[1])
        return Refusal(key, retry_after, first_in_window=refusals.get(key) == 1)

    async def _maybe_sweep(self, session: AsyncSession, window: int) -> None:
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        await session.exec(
            delete(RateLimitCounter).where(col(RateLimitCounter.window_index) < window - 1)
        )

    async def release(self, database: Database) -> None:
        """Give back every lease's unused hits (at shutdown; tests call it too).

        While running, a lease's unused hits go back when the process next counts its key;
        a key it stops seeing keeps at most one lease counted until the window turns.
        """
        giving = {key: lease for key, lease in self._leases.items() if key not in self._refills}
        for key in giving:
            del self._leases[key]
        back = {key: lease for key, lease in giving.items() if lease.left > 0}
        if not back:
            return
        async with database.transaction() as session:
            for key in sorted(back):
                lease = back[key]
                # Off the window it was counted in, wherever the row now keeps that window.
                await session.exec(
                    update(COUNTERS)
                    .where(COUNTERS.c.key == key, COUNTERS.c.window_index == lease.window)
                    .values(hits=_minus(COUNTERS.c.hits, lease.left))
                )
                await session.exec(
                    update(COUNTERS)
                    .where(COUNTERS.c.key == key, COUNTERS.c.window_index == lease.window + 1)
                    .values(previous_hits=_minus(COUNTERS.c.previous_hits, lease.left))
                )

    async def stop(self, database: Database) -> None:
        """At shutdown: give back what this process reserved and did not serve."""
        try:
            await self.release(database)
        except Exception:  # counted too much, never too little: the window forgets it
            logger.warning("could not give back unused rate-limit hits", exc_info=True)


async def _count_reservations(
    session: AsyncSession, asks: Sequence[_Ask], window: int
) -> dict[str, _Row]:
    """Add every key's new hits to its row in `window` (one upsert, rolling a row into the
    window if it was behind); `_WindowMoved` if another instance counts a key in a later one."""
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(COUNTERS).values(
        [
            {
                "key": ask.key,
                "window_index": window,
                "hits": ask.new_hits,
                "previous_hits": 0,
                "refused": 0,
            }
            for ask in asks
        ]
    )
    new = statement.excluded
    same = COUNTERS.c.window_index == new.window_index
    upsert = statement.on_conflict_do_update(
        index_elements=[COUNTERS.c.key],
        set_={
            "previous_hits": case(
                (same, COUNTERS.c.previous_hits),
                (COUNTERS.c.window_index == new.window_index - 1, COUNTERS.c.hits),
                else_=0,
            ),
            "hits": case((same, COUNTERS.c.hits + new.hits), else_=new.hits),
            "refused": case((same, COUNTERS.c.refused), else_=0),
            "window_index": new.window_index,
        },
        # Never back: a count stamped with a window another instance has left.
        where=COUNTERS.c.window_index <= new.window_index,
    ).returning(COUNTERS.c.key, COUNTERS.c.hits, COUNTERS.c.previous_hits)
    rows = {key: _Row(hits, previous) for key, hits, previous in (await session.exec(upsert)).all()}
    if len(rows) < len(asks):  # the caller's transaction rolls the whole count back
        missing = {ask.key for ask in asks} - set(rows)
        latest = (
            await session.exec(
                select(func.max(col(RateLimitCounter.window_index))).where(
                    col(RateLimitCounter.key).in_(missing)
                )
            )
        ).one()
        raise _WindowMoved(int(latest or window))
    return rows


async def _take_back_stale(
    session: AsyncSession, asks: Sequence[_Ask], rows: Mapping[str, _Row], window: int
) -> dict[str, _Row]:
    """Take the stale leases' unused hits off what the window before counted."""
    taken = dict(rows)
    for ask in asks:
        if ask.stale > 0:
            await session.exec(
                update(COUNTERS)
                .where(COUNTERS.c.key == ask.key, COUNTERS.c.window_index == window)
                .values(previous_hits=_minus(COUNTERS.c.previous_hits, ask.stale))
            )
            row = taken[ask.key]
            taken[ask.key] = row._replace(previous=max(0, row.previous - ask.stale))
    return taken


async def _give_back_surplus(
    session: AsyncSession, grants: Sequence[_Grant], window: int
) -> dict[str, int]:
    """Give back the hits reserved but not granted, and count refusals: each key's refusals
    in the window so far, for the keys written."""
    refusals: dict[str, int] = {}
    for grant in grants:
        if grant.surplus == 0 and not grant.refused:
            continue
        row = (
            await session.exec(
                update(COUNTERS)
                .where(COUNTERS.c.key == grant.ask.key, COUNTERS.c.window_index == window)
                .values(
                    hits=COUNTERS.c.hits - grant.surplus,
                    refused=COUNTERS.c.refused + (1 if grant.refused else 0),
                )
                .returning(COUNTERS.c.refused)
            )
        ).first()
        refusals[grant.ask.key] = 0 if row is None else row[0]
    return refusals


def _minus(column: Any, amount: int) -> Any:
    """SQL: `column - amount`, never below zero."""
    return case((column > amount, column - amount), else_=0)
