"""What the needs-sharing filter costs: a Compact entity's reads next to an analyst's.

An analyst's scope is `all` (no filter); an entity's is `consented`: every need is
checked in SQL against its report's current consent or its State's current
needs-sharing decision, and every request against all of its needs. Same routes, same
data, one process (httpx in-process); rounds interleave; medians are compared.

Data: 193 States with 12 needs each (a third from report recommendations, the rest from
consultations or the States' own requests), half of the States sharing (each with a
history of decisions), 3 requests per State of which 2 circulated, offers on some.

    PYTHONPATH=. .venv/bin/python benchmarks/assistance_scope.py [--requests 200]
        [--rounds 3] [--database-url postgresql://postgres@127.0.0.1:5432/DB]
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import text
from tests.conftest import prepare
from tests.factories import make_org, make_user, new_client, sign_in

from ctcp.app import create_app
from ctcp.assistance.models import (
    AssistanceRequest,
    AssistanceRequestNeed,
    Need,
    Offer,
    RequestTransition,
)
from ctcp.consent.models import (
    ConsentEvent,
    NeedsSharingEvent,
    Publication,
    PublicationSection,
)
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.reports.models import ReportSection, VisitReport

STATES = 193
NEEDS_PER_STATE = 12
AREAS = ["legislation", "border_management", "counter_financing", "law_enforcement"]
ROUTES = [
    "/api/v1/needs?limit=50",
    "/api/v1/assistance-requests?limit=50",
    "/api/v1/assistance/overview",
]


async def populate(database: Database) -> None:
    rng = random.Random(6)
    entities = [await make_org(database, kind="compact_entity") for _ in range(10)]
    for index in range(STATES):
        state = await make_org(database)
        sharing = index % 2 == 0
        async with database.transaction() as session:
            report = VisitReport(
                lineage_id=uuid.uuid4(),
                state_id=state.id,
                kind="comprehensive",
                title="Visit",
                language="en",
                visit_start_date=date(2026, 1, 5),
                visit_end_date=date(2026, 1, 9),
                status="adopted",
            )
            session.add(report)
            await session.flush()
            section = ReportSection(
                report_id=report.id, area="border_management", title="S", body="B"
            )
            session.add(section)
            await session.flush()
            for sequence in (1, 2, 3):
                consent = ConsentEvent(
                    report_id=report.id,
                    sequence=sequence,
                    scope="full",
                    audience="compact",
                    share_needs=sharing or sequence < 3,
                    on_behalf_of=state.id,
                )
                session.add(consent)
                session.add(
                    NeedsSharingEvent(
                        state_id=state.id, sequence=sequence, share_needs=sharing or sequence < 3
                    )
                )
            await session.flush()
            # The current consent's publication (earlier ones revoked, as consent does).
            publication = Publication(
                report_id=report.id,
                consent_event_id=consent.id,
                state_id=state.id,
                audience="compact",
                title="Visit",
            )
            session.add(publication)
            await session.flush()
            session.add(
                PublicationSection(
                    publication_id=publication.id,
                    section_id=section.id,
                    area=section.area,
                    title="S",
                    body="B",
                )
            )
            needs = [
                Need(
                    state_id=state.id,
                    area=rng.choice(AREAS),
                    description="A need.",
                    priority="high",
                    source="recommendation" if n % 3 == 0 else "state_request",
                    report_id=report.id if n % 3 == 0 else None,
                    section_id=section.id if n % 3 == 0 else None,
                )
                for n in range(NEEDS_PER_STATE)
            ]
            session.add_all(needs)
            await session.flush()
            for r in range(3):
                filed = AssistanceRequest(
                    state_id=state.id,
                    title="Request",
                    description="D",
                    status="circulated" if r < 2 else "submitted",
                    filed_by_org=state.id,
                )
                session.add(filed)
                await session.flush()
                for need in needs[r * 3 : r * 3 + 2]:
                    session.add(AssistanceRequestNeed(request_id=filed.id, need_id=need.id))
                session.add(
                    RequestTransition(request_id=filed.id, to_status=filed.status, by_org=state.id)
                )
                if r == 0:
                    session.add(
                        Offer(
                            request_id=filed.id,
                            organization_id=rng.choice(entities).id,
                            programme="P",
                            description="D",
                            timeline="2027",
                        )
                    )


async def _timed(http: httpx.AsyncClient, path: str, requests: int) -> float:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await http.get(path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(samples) * 1e6


async def run(database_url: str, requests: int, rounds: int, var_dir: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=database_url,
        var_dir=var_dir,
        secret_key="bench-secret-key-" + "x" * 32,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.database
        await populate(database)
        if database.backend == "postgresql":
            # Fresh tables have no statistics yet; autovacuum would gather them in production.
            async with database.transaction() as session:
                await session.exec(text("ANALYZE"))
        analyst = new_client(app)
        await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)
        entity = new_client(app)
        focal_point = await make_user(
            database, roles=("entity_focal_point",), kind="compact_entity"
        )
        await sign_in(entity, focal_point.email)
        print(
            f"backend: {database.backend}; {STATES} States x {NEEDS_PER_STATE} needs, half sharing"
        )
        for path in ROUTES:
            await _timed(analyst, path, 20)  # warm-up
            await _timed(entity, path, 20)
            ratios = []
            for _ in range(rounds):
                all_us = await _timed(analyst, path, requests)
                shared_us = await _timed(entity, path, requests)
                ratios.append(shared_us / all_us)
            print(
                f"{path}: analyst {all_us:,.0f} µs, entity {shared_us:,.0f} µs"
                f" (last round); median ratio entity/analyst {statistics.median(ratios):.2f}"
            )
        await analyst.aclose()
        await entity.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        prepare(url)
        asyncio.run(run(url, options.requests, options.rounds, Path(folder)))


if __name__ == "__main__":
    main()
