"""The change feed: how fast a Compact entity's system reads all of it, and how soon a
consent withdrawal's `revoke` reaches a system that polls.

On `ctcp demo --scale medium` (built here unless the database holds it already; its
objects enter the feed through `changes.backfill`: several thousand entries), in one
process (httpx in-process, no network), as an API client of the entity leading the most
activities, holding every read scope:

1. throughput: `GET /api/v1/changes?limit=200` from no cursor to the head, page after
   page (what a new system, or one answered 410, reads to build its copy): entries
   looked through per second and items served per second, p50/p99 per page. Baseline in
   the same run, same client: every page of `GET /api/v1/needs?limit=200`.
2. delay: a poller follows the feed (a page every `--interval` seconds, 0.1 by default,
   at once while `has_more`); a consent officer withdraws the consent of one of
   `--withdrawals` publications at a time; the delay runs from the withdrawal's
   response to the poller being served the publication's `revoke`. Target: p99 < 1 s.

    PYTHONPATH=. .venv/bin/python benchmarks/changes.py [--scale medium] [--rounds 3]
        [--withdrawals 30] [--interval 0.1]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB]  # default: a new SQLite file
"""

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_data import build, ms, p99
from fastapi import FastAPI
from sqlalchemy import func, text
from sqlmodel import col, select
from tests.conftest import prepare
from tests.factories import (
    PASSWORD,
    TEST_KEY,
    make_api_client,
    make_user,
    new_client,
    one_section_report,
    sign_in,
)

from ctcp.app import create_app
from ctcp.changes.models import ChangeEntry, FeedHead
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity
from ctcp.planning.service import COMPACT_KINDS
from ctcp_demo import large

READ_SCOPES = (
    "publications:read",
    "needs:read",
    "requests:read",
    "contacts:read",
    "activities:read",
)
FEED = "/api/v1/changes"
BASELINE = "/api/v1/needs"


@dataclass
class Read:
    """One full read of a paginated route: each page's time and what it held."""

    pages: list[float] = field(default_factory=list)
    items: int = 0

    @property
    def seconds(self) -> float:
        return sum(self.pages)


async def busiest_entity(database: Database) -> Organization:
    async with database.sessionmaker() as session:
        statement = (
            select(Organization)
            .join(Activity, col(Activity.lead_id) == col(Organization.id))
            .where(col(Organization.kind).in_(COMPACT_KINDS))
            .group_by(col(Organization.id))
            .order_by(func.count().desc())
            .limit(1)
        )
        return (await session.exec(statement)).one()


async def member_states(database: Database, count: int) -> list[str]:
    async with database.sessionmaker() as session:
        statement = (
            select(Organization.code)
            .where(col(Organization.kind) == "member_state")
            .order_by(col(Organization.code))
        )
        codes = list((await session.exec(statement)).all())
    return random.Random(21).sample(codes, min(count, len(codes)))


async def feed_size(database: Database) -> tuple[int, dict[str, int]]:
    async with database.sessionmaker() as session:
        head = (await session.exec(select(FeedHead.last_seq))).one()
        kinds = (
            await session.exec(
                select(ChangeEntry.object_type, func.count()).group_by(col(ChangeEntry.object_type))
            )
        ).all()
    return int(head), {kind: int(count) for kind, count in kinds}


async def token_client(app: FastAPI, client_id: str, secret: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 40000)),
        base_url="https://ctcp.test",
        timeout=60,
    )
    issued = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert issued.status_code == 200, issued.text
    http.headers["Authorization"] = f"Bearer {issued.json()['access_token']}"
    return http


async def read_all(http: httpx.AsyncClient, path: str, feed: bool) -> Read:
    """Every page of `path` at limit=200, timed page by page."""
    read = Read()
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        started = time.perf_counter()
        response = await http.get(path, params=params)
        read.pages.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        read.items += len(body["items"])
        cursor = body["next_cursor"]
        if (feed and not body["has_more"]) or (not feed and cursor is None):
            return read


async def head_cursor(http: httpx.AsyncClient) -> str:
    cursor: str | None = None
    while True:
        response = await http.get(
            FEED, params={"limit": "200"} | ({"cursor": cursor} if cursor else {})
        )
        body = response.json()
        cursor = body["next_cursor"]
        if not body["has_more"]:
            assert cursor is not None
            return cursor


@dataclass
class Poller:
    """Follows the feed; tells when each awaited publication's revoke is served."""

    http: httpx.AsyncClient
    cursor: str
    interval: float
    awaited: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    polls: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            response = await self.http.get(FEED, params={"cursor": self.cursor, "limit": "200"})
            served = time.perf_counter()
            self.polls += 1
            assert response.status_code == 200, response.text[:300]
            body = response.json()
            for item in body["items"]:
                waiting = self.awaited.pop(item["id"], None)
                if item["op"] == "revoke" and waiting is not None and not waiting.done():
                    waiting.set_result(served)
            self.cursor = body["next_cursor"]
            if not body["has_more"]:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)


async def consented_publications(
    app: FastAPI, database: Database, count: int
) -> tuple[httpx.AsyncClient, list[tuple[str, str]]]:
    """`count` new reports, each consented in full to the Compact: (report, publication)
    ids; and the consent officer's client."""
    analyst, officer = new_client(app), new_client(app)
    await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email, PASSWORD)
    await sign_in(officer, (await make_user(database, roles=("consent_officer",))).email)
    made = []
    for code in await member_states(database, count):
        created = await analyst.post("/api/v1/reports", json=one_section_report(code))
        assert created.status_code == 201, created.text
        report_id = created.json()["id"]
        assert (await analyst.post(f"/api/v1/reports/{report_id}/adopt")).status_code == 200
        consent = await officer.post(
            f"/api/v1/reports/{report_id}/consent",
            json={"scope": "full", "audience": "compact", "reference": "NV/1", "after_sequence": 0},
        )
        assert consent.status_code == 201, consent.text
        listed = await analyst.get("/api/v1/publications", params={"state": code, "limit": 200})
        publication = next(p for p in listed.json()["items"] if p["report_id"] == report_id)
        made.append((report_id, publication["id"]))
    await analyst.aclose()
    return officer, made


async def delays(
    http: httpx.AsyncClient, officer: httpx.AsyncClient, made: list[Any], interval: float
) -> tuple[list[float], int]:
    """Withdraw each consent in turn; the seconds until the poller is served its revoke."""
    poller = Poller(http, await head_cursor(http), interval)
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    measured = []
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    for report_id, publication_id in made:
        await asyncio.sleep(rng.uniform(0, interval * 2))  # not in step with the polls
        served: asyncio.Future[float] = loop.create_future()
        poller.awaited[publication_id] = served
        withdrawn = await officer.post(
            f"/api/v1/reports/{report_id}/consent/withdraw", json={"reason": "Benchmark."}
        )
        answered = time.perf_counter()
        assert withdrawn.status_code == 201, withdrawn.text
        measured.append(max(0.0, await asyncio.wait_for(served, timeout=30) - answered))
    stop.set()
    await polling
    return measured, poller.polls


async def run(options: argparse.Namespace, url: str, var_dir: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=url,
        var_dir=var_dir,
        # The test key: the factories' users enrol MFA under it (a consent officer).
        secret_key=TEST_KEY.decode(),
        rate_limit_per_client=10**9,
        rate_limit_per_address=10**9,
        contact_reminder_seconds=0,
    )
    await build(url, large.SCALES[options.scale], settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database: Database = app.state.database
        if database.backend == "postgresql":
            async with database.transaction() as session:
                await session.exec(text("ANALYZE"))  # type: ignore[call-overload]
        entity = await busiest_entity(database)
        credentials = await make_api_client(database, org=entity, scopes=READ_SCOPES)
        http = await token_client(app, credentials.client_id, credentials.secret)
        head, kinds = await feed_size(database)
        print(
            f"backend: {database.backend}; feed: {head:,} entries "
            f"({', '.join(f'{k} {n:,}' for k, n in sorted(kinds.items()))}); "
            f"client of {entity.code}"
        )
        await read_all(http, BASELINE, feed=False)  # warm-up
        feeds: list[Read] = []
        baselines: list[Read] = []
        for _ in range(options.rounds):
            baselines.append(await read_all(http, BASELINE, feed=False))
            feeds.append(await read_all(http, FEED, feed=True))
        officer, made = await consented_publications(app, database, options.withdrawals)
        measured, polls = await delays(http, officer, made, options.interval)
        await officer.aclose()
        await http.aclose()
    print(f"\n1. throughput: {options.rounds} full reads at limit=200 (p50 / p99 per page, ms)")
    for name, reads, scanned in (("feed", feeds, head), ("needs list (baseline)", baselines, 0)):
        pages = [page for read in reads for page in read.pages]
        seconds = statistics.median(read.seconds for read in reads)
        items = reads[-1].items
        looked = f"{scanned / seconds:,.0f} entries/s looked through, " if scanned else ""
        print(
            f"  {name:<22} {len(reads[-1].pages)} pages, {items:,} items in {seconds:.2f} s: "
            f"{looked}{items / seconds:,.0f} items/s served; page p50 "
            f"{ms(statistics.median(pages))} p99 {ms(p99(pages))}"
        )
    print(
        f"\n2. withdrawal -> revoke served ({len(measured)} withdrawals, poll every "
        f"{options.interval:g} s, {polls} polls): p50 {ms(statistics.median(measured))} ms, "
        f"p99 {ms(p99(measured))} ms, max {ms(max(measured))} ms (target: < 1,000 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(large.SCALES), default="medium")
    parser.add_argument("--rounds", type=int, default=3, help="full reads of the feed")
    parser.add_argument("--withdrawals", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls")
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'changes.db'}"
        prepare(url)
        asyncio.run(run(options, url, Path(folder)))


if __name__ == "__main__":
    main()
