"""Rate limits shared by every worker and instance: counters in the database.

A sliding-window counter (the previous fixed window's count, weighted by how much of it
still overlaps the sliding window, plus the current one's): one row per key, moved on
by a single atomic upsert, so two instances counting the same client never lose a hit.
Refused requests are taken back off the count, so a client that keeps knocking while
limited is let in again when `Retry-After` says.

Libraries considered: `limits` stores only in memory, Redis, Memcached or MongoDB, and
`pyrate-limiter`'s SQL buckets need a second, synchronous driver and keep a row per
hit; the platform's shared state lives in its own database (DESIGN.md, "Running it").
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Integer, case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.core.clock import clock

# Every this many counted requests, a process sweeps counters no window still reads.
SWEEP_EVERY = 1000


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


class RateLimiter:
    """Counts requests against limits in one short transaction of its caller's choosing."""

    def __init__(self, *, window_seconds: int) -> None:
        self.window_seconds = window_seconds
        self._since_sweep = 0

    async def hit(self, session: AsyncSession, limits: Sequence[Limit]) -> Refusal | None:
        """Count one request against every limit; the tightest refusal, or None to go on.

        Run it in a transaction of its own that commits even when the request is refused
        (the refusal's bookkeeping must stay), before the request's own work begins.
        """
        if not limits:
            return None
        now = clock.now().timestamp()
        window = int(now // self.window_seconds)
        elapsed = now / self.window_seconds - window
        by_key = {limit.key[:128]: limit.requests for limit in limits}
        keys = sorted(by_key)  # one order everywhere: concurrent upserts cannot deadlock
        table = RateLimitCounter.__table__  # type: ignore[attr-defined]
        dialect = (await session.connection()).dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(table).values(
            [
                {"key": key, "window_index": window, "hits": 1, "previous_hits": 0, "refused": 0}
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
                "hits": case((same, table.c.hits + 1), else_=1),
                "refused": case((same, table.c.refused), else_=0),
                "window_index": new.window_index,
            },
        ).returning(table.c.key, table.c.hits, table.c.previous_hits)
        rows = (await session.exec(upsert)).all()
        refusals: list[tuple[str, int]] = []
        for key, hits, previous in rows:
            allowed = by_key[key]
            if previous * (1 - elapsed) + hits > allowed:
                refusals.append(
                    (key, _wait_seconds(previous, hits, allowed, elapsed, self.window_seconds))
                )
        await self._maybe_sweep(session, window)
        if not refusals:
            return None
        # Not served, so not counted: take the hit back off every key, note the refusal.
        returned = await session.exec(
            update(table)
            .where(col(table.c.key).in_(keys), table.c.window_index == window)
            .values(hits=table.c.hits - 1, refused=table.c.refused + 1)
            .returning(table.c.key, table.c.refused)
        )
        refused = {key: count for key, count in returned.all()}
        key, retry_after = max(refusals, key=lambda refusal: refusal[1])
        return Refusal(key, retry_after, first_in_window=refused.get(key) == 1)

    async def _maybe_sweep(self, session: AsyncSession, window: int) -> None:
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        await session.exec(
            delete(RateLimitCounter).where(col(RateLimitCounter.window_index) < window - 1)
        )
