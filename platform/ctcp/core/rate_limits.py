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
hit; the platform's shared state lives in its own database (DESIGN.md, "Running it").
"""

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
        elapsed = now / self.window_seconds - window
        leases = {key: lease for key in keys if (lease := self._leases.get(key)) is not None}
        # Unused hits of an expired lease of this window are folded into the new one; those
        # of the window before are taken off what that window counted.
        held = {key: lease.left for key, lease in leases.items() if lease.window == window}
        stale = {
            key: lease.left
            for key, lease in leases.items()
            if lease.window == window - 1 and lease.left > 0
        }
        reserved = {key: max(self._lease_size(key), held.get(key, 0)) for key in keys}
        table = RateLimitCounter.__table__  # type: ignore[attr-defined]
        async with database.transaction() as counting:
            dialect = (await counting.connection()).dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            statement = insert(table).values(
                [
                    {
                        "key": key,
                        "window_index": window,
                        "hits": reserved[key] - held.get(key, 0),
                        "previous_hits": 0,
                        "refused": 0,
                    }
                    for key in keys
                ]
            )
            new = statement.excluded
            same = table.c.window_index == new.window_index
            upsert = statement.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "previous_hits": case(
                        (same, table.c.previous_hits),
                        (table.c.window_index == new.window_index - 1, table.c.hits),
                        else_=0,
                    ),
                    "hits": case((same, table.c.hits + new.hits), else_=new.hits),
                    "refused": case((same, table.c.refused), else_=0),
                    "window_index": new.window_index,
                },
                # Never back: a count stamped with a window another instance has left.
                where=table.c.window_index <= new.window_index,
            ).returning(table.c.key, table.c.hits, table.c.previous_hits)
            counted = {
                key: (hits, previous) for key, hits, previous in (await counting.exec(upsert)).all()
            }
            if len(counted) < len(keys):  # roll the whole count back, count again later
                missing = set(keys) - set(counted)
                latest = (
                    await counting.exec(
                        select(func.max(col(RateLimitCounter.window_index))).where(
                            col(RateLimitCounter.key).in_(missing)
                        )
                    )
                ).one()
                raise _WindowMoved(int(latest or window))
            for key in sorted(stale):
                await counting.exec(
                    update(table)
                    .where(table.c.key == key, table.c.window_index == window)
                    .values(previous_hits=_minus(table.c.previous_hits, stale[key]))
                )
                hits, previous = counted[key]
                counted[key] = (hits, max(0, previous - stale[key]))
            granted: dict[str, int] = {}
            for key in keys:
                hits, previous = counted[key]
                room = math.floor(needed[key] - (previous * (1 - elapsed) + hits - reserved[key]))
                # At most a sixteenth of what is left, as the row says now: with fewer than
                # 32 left, one hit per count, so no process holds what another needs.
                granted[key] = 0 if room < 1 else min(reserved[key], max(1, room // LEASE_SHARE))
                self._headroom[key] = max(0, room - granted[key])
            refused = [key for key in keys if granted[key] == 0]
            returned: dict[str, int] = {}
            for key in keys:
                surplus = reserved[key] - granted[key]
                if surplus == 0 and key not in refused:
                    continue
                row = (
                    await counting.exec(
                        update(table)
                        .where(table.c.key == key, table.c.window_index == window)
                        .values(
                            hits=table.c.hits - surplus,
                            refused=table.c.refused + (1 if key in refused else 0),
                        )
                        .returning(table.c.refused)
                    )
                ).first()
                returned[key] = 0 if row is None else row[0]
            await self._maybe_sweep(counting, window)
        expires = time.monotonic() + LEASE_SECONDS
        for key in keys:
            self._leases[key] = _Lease(window, granted[key], expires)
        if len(self._headroom) > MAX_KEYS:  # a sizing hint only: many addresses, start over
            self._headroom.clear()
        if not refused:
            return None
        waits = []
        for key in refused:
            hits, previous = counted[key]
            # As if this one request had been counted on its own: the hits before it, plus it.
            hits_with_this = hits - reserved[key] + 1
            waits.append(
                (
                    key,
                    _wait_seconds(
                        previous, hits_with_this, needed[key], elapsed, self.window_seconds
                    ),
                )
            )
        key, retry_after = max(waits, key=lambda wait: wait[1])
        return Refusal(key, retry_after, first_in_window=returned.get(key) == 1)

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
        table = RateLimitCounter.__table__  # type: ignore[attr-defined]
        async with database.transaction() as session:
            for key in sorted(back):
                lease = back[key]
                # Off the window it was counted in, wherever the row now keeps that window.
                await session.exec(
                    update(table)
                    .where(table.c.key == key, table.c.window_index == lease.window)
                    .values(hits=_minus(table.c.hits, lease.left))
                )
                await session.exec(
                    update(table)
                    .where(table.c.key == key, table.c.window_index == lease.window + 1)
                    .values(previous_hits=_minus(table.c.previous_hits, lease.left))
                )

    async def stop(self, database: Database) -> None:
        """At shutdown: give back what this process reserved and did not serve."""
        try:
            await self.release(database)
        except Exception:  # counted too much, never too little: the window forgets it
            logger.warning("could not give back unused rate-limit hits", exc_info=True)


def _minus(column: Any, amount: int) -> Any:
    """SQL: `column - amount`, never below zero."""
    return case((column > amount, column - amount), else_=0)
