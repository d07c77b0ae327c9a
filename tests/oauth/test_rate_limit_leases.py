"""Leased counting: a process reserves hits a few at a time, and the shared count stays exact.

Each `RateLimiter` here stands for one worker process; two of them on one database are
two instances. What is checked is what the shared counter holds and what is admitted.
"""

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.core.rate_limits import MAX_LEASE, Limit, RateLimitCounter, RateLimiter


@pytest.fixture(autouse=True)
def start_of_a_window() -> None:
    """Every test starts 1 ms into a window, so no window turns while it runs."""
    now = clock.now().timestamp()
    clock.advance(timedelta(seconds=60 - now % 60 + 0.001))


def _key() -> str:
    return f"client:test-{uuid.uuid4().hex[:12]}"


async def _row(database: Database, key: str) -> RateLimitCounter:
    async with database.sessionmaker() as session:
        return (
            await session.exec(select(RateLimitCounter).where(RateLimitCounter.key == key))
        ).one()


async def _counted(database: Database, key: str) -> int:
    return (await _row(database, key)).hits


async def test_the_shared_count_is_never_below_what_was_served_and_unused_hits_go_back(
    database: Database,
) -> None:
    limiter = RateLimiter(window_seconds=60)
    limit = Limit(_key(), 100_000)
    for served in range(1, 201):
        assert await limiter.hit(database, [limit]) is None
        # Every served request is in the row already; at most one lease more is reserved.
        assert served <= await _counted(database, limit.key) <= served + MAX_LEASE
    await limiter.release(database)
    assert await _counted(database, limit.key) == 200


async def test_near_the_limit_every_request_is_counted_on_its_own_and_refusals_give_back(
    database: Database,
) -> None:
    limiter = RateLimiter(window_seconds=60)
    limit = Limit(_key(), 40)
    outcomes = [await limiter.hit(database, [limit]) for _ in range(42)]
    assert outcomes[:40] == [None] * 40
    first, second = outcomes[40], outcomes[41]
    assert first is not None and second is not None
    assert first.key == limit.key and first.retry_after >= 1
    assert first.first_in_window and not second.first_in_window
    # Exactly what was served: no lease outlives the limit, refused requests are taken back.
    assert await _counted(database, limit.key) == 40


async def test_two_instances_racing_never_admit_more_than_the_limit_together(
    database: Database,
) -> None:
    one, two = RateLimiter(window_seconds=60), RateLimiter(window_seconds=60)
    limit = Limit(_key(), 500)
    admitted = {"one": 0, "two": 0}

    async def client(name: str, limiter: RateLimiter) -> None:
        for _ in range(25):
            if await limiter.hit(database, [limit]) is None:
                admitted[name] += 1

    # 2 x 16 concurrent callers, 800 attempts against a limit of 500.
    await asyncio.gather(
        *(client("one", one) for _ in range(16)), *(client("two", two) for _ in range(16))
    )
    served = admitted["one"] + admitted["two"]
    assert served <= 500
    assert admitted["one"] > 0 and admitted["two"] > 0
    await one.release(database)
    await two.release(database)
    assert await _counted(database, limit.key) == served
    # Nothing was lost either: a third instance gets exactly what is left, then no more.
    three = RateLimiter(window_seconds=60)
    more = [await three.hit(database, [limit]) for _ in range(500 - served + 1)]
    assert more[:-1] == [None] * (500 - served)
    assert more[-1] is not None
    assert await _counted(database, limit.key) == 500


async def test_a_refusal_on_one_key_leaves_the_other_keys_uncounted(database: Database) -> None:
    limiter = RateLimiter(window_seconds=60)
    tight, loose = Limit(_key(), 3), Limit(_key(), 100_000)
    outcomes = [await limiter.hit(database, [tight, loose]) for _ in range(5)]
    assert outcomes[:3] == [None] * 3
    assert all(outcome is not None and outcome.key == tight.key for outcome in outcomes[3:])
    await limiter.release(database)
    assert await _counted(database, tight.key) == 3
    assert await _counted(database, loose.key) == 3


async def test_a_lease_never_takes_more_than_a_sixteenth_of_what_the_row_has_left(
    database: Database,
) -> None:
    one, two = RateLimiter(window_seconds=60), RateLimiter(window_seconds=60)
    limit = Limit(_key(), 1000)
    assert await one.hit(database, [limit]) is None  # `one` learns: 999 left
    for _ in range(979):  # meanwhile `two` serves almost everything
        assert await two.hit(database, [limit]) is None
    await two.release(database)
    assert await _counted(database, limit.key) == 980
    # `one` would lease 62 by what it last saw; the row says 20 are left: it takes 1.
    assert await one.hit(database, [limit]) is None
    assert await _counted(database, limit.key) == 981
    served = 981
    for turn in range(40):  # alternating, they share what is left to the last hit
        if await (one if turn % 2 else two).hit(database, [limit]) is None:
            served += 1
    assert served == 1000
    assert await _counted(database, limit.key) == 1000


async def test_an_instance_whose_clock_lags_counts_in_the_newer_window(
    database: Database,
) -> None:
    one, two = RateLimiter(window_seconds=60), RateLimiter(window_seconds=60)
    limit = Limit(_key(), 10)
    assert await one.hit(database, [limit]) is None
    clock.advance(timedelta(seconds=60))
    assert await two.hit(database, [limit]) is None  # the row moves on to the next window
    clock.advance(timedelta(seconds=-60))  # `one` is a minute behind
    assert await one.hit(database, [limit]) is None
    row = await _row(database, limit.key)
    # Not moved back (which would forget the newer window's hits): counted in it.
    assert int(clock.now().timestamp() // 60) + 1 == row.window_index
    assert (row.hits, row.previous_hits) == (2, 1)


async def test_unused_hits_of_the_window_before_come_off_its_count(database: Database) -> None:
    limiter = RateLimiter(window_seconds=60)
    limit = Limit(_key(), 100_000)
    assert await limiter.hit(database, [limit]) is None
    assert await limiter.hit(database, [limit]) is None  # a lease of 64: 63 unused
    assert await _counted(database, limit.key) == 65
    clock.advance(timedelta(seconds=60))
    assert await limiter.hit(database, [limit]) is None
    row = await _row(database, limit.key)
    assert row.previous_hits == 2  # what the window before served, not what it reserved
    await limiter.release(database)
    assert await _counted(database, limit.key) == 1
