"""Joint planning on the large data set: the coordination matrix, a page of activities and
a year's export.

On `ctcp demo --scale large` (built here unless the database holds it already: 20,000
activities over the 193 States and the Compact's entities, 2019-2028, among 20,000 users,
30,000 needs and 1,000,000 audit events; about seven States in ten share their needs),
in one process (httpx in-process, no network), signed in as generated users with the
demo password:

- the focal point of the entity leading the most activities (it sees its own work, and
  the others' only in the States that share their needs: the matrix's scope rule at its
  widest) and a CTED analyst (every State): `GET /api/v1/coordination/matrix`, the same
  for one year (`?year=`), `GET /api/v1/activities?limit=50` and
  `GET /api/v1/activities/export?format=csv&year=` (every activity of that year they may
  read, in one file);
- for each of them, the baseline in the same run: `GET /api/v1/organizations?limit=50`,
  the same session, guard and audited page of 50 over a table that needs no filter.

Rounds interleave the routes; p50 and p99 are over every sample of every round, the
ratio to the baseline is the median of the rounds' p50 ratios.

    PYTHONPATH=. .venv/bin/python benchmarks/planning.py [--scale large] [--requests 100]
        [--exports 20] [--rounds 3] [--warm-up 5] [--year 2026]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB]  # default: a new SQLite file
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench_data import build, ms, p99
from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar
from tests.conftest import prepare
from tests.factories import new_client, sign_in

from ctcp.app import create_app
from ctcp.consent import needs_sharing
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.models import User, UserRole
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity
from ctcp.planning.service import COMPACT_KINDS
from ctcp_demo import large
from ctcp_demo.content import DEMO_PASSWORD

BASELINE = "/api/v1/organizations?limit=50"
MATRIX = "/api/v1/coordination/matrix"
PAGE = "/api/v1/activities?limit=50"


@dataclass
class Route:
    """One caller's route, and what it took, round by round."""

    caller: str
    path: str
    requests: int
    rounds: list[list[float]] = field(default_factory=list)
    shown: int = 0  # cells, activities or rows in the last answer
    size: int = 0  # bytes of the last answer

    @property
    def samples(self) -> list[float]:
        return [sample for round_ in self.rounds for sample in round_]


def _shown(path: str, response: httpx.Response) -> int:
    if "/export" in path:
        return max(0, len(response.text.splitlines()) - 1)
    if path.startswith(MATRIX):
        return len(response.json()["cells"])
    return len(response.json()["items"])


async def _round(http: httpx.AsyncClient, route: Route) -> None:
    samples = []
    for _ in range(route.requests):
        started = time.perf_counter()
        response = await http.get(route.path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
    route.rounds.append(samples)
    route.shown, route.size = _shown(route.path, response), len(response.content)


async def actors(database: Database) -> tuple[dict[str, str], str]:
    """The e-mails of a focal point of the entity leading the most activities and of a
    CTED analyst; and that entity's code."""

    def holder(role: str) -> SelectOfScalar[str]:
        return (
            select(User.email)
            .join(UserRole, col(UserRole.user_id) == col(User.id))
            .where(col(UserRole.role) == role)
            .order_by(col(User.email))
            .limit(1)
        )

    async with database.sessionmaker() as session:
        with_focal_points = select(User.organization_id).join(
            UserRole, col(UserRole.user_id) == col(User.id)
        )
        entity_id, code = (
            await session.exec(
                select(Organization.id, Organization.code)
                .join(Activity, col(Activity.lead_id) == col(Organization.id))
                .where(
                    col(Organization.kind).in_(COMPACT_KINDS),
                    col(Organization.id).in_(with_focal_points),
                )
                .group_by(col(Organization.id), col(Organization.code))
                .order_by(func.count().desc())
                .limit(1)
            )
        ).one()
        entity = holder("entity_focal_point").where(col(User.organization_id) == entity_id)
        emails = {
            "entity focal point": (await session.exec(entity)).one(),
            "CTED analyst": (await session.exec(holder("cted_analyst"))).one(),
        }
    return emails, code


async def describe(database: Database, entity: str) -> str:
    """The data the routes read: activities, the States sharing their needs, the entity's."""
    async with database.sessionmaker() as session:
        activities, states = (
            await session.exec(select(func.count(), func.count(col(Activity.state_id).distinct())))
        ).one()
        sharing_now = needs_sharing.sharing_states(clock.now())
        sharing = set(
            (
                await session.exec(
                    select(Organization.id).where(col(Organization.id).in_(sharing_now))
                )
            ).all()
        )
        led = (
            await session.exec(
                select(Activity.state_id)
                .join(Organization, col(Organization.id) == col(Activity.lead_id))
                .where(col(Organization.code) == entity)
            )
        ).all()
        users = (await session.exec(select(func.count()).select_from(User))).one()
    in_sharing = sum(1 for state_id in led if state_id in sharing)
    return (
        f"{activities:,} activities in {states} States; {len(sharing)} States share their "
        f"needs; {entity} leads {len(led):,} ({in_sharing:,} in sharing States); {users:,} users"
    )


async def run(options: argparse.Namespace, url: str, var_dir: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=url,
        var_dir=var_dir,
        secret_key="bench-secret-key-" + "x" * 32,
        rate_limit_per_client=10**9,
        rate_limit_per_address=10**9,
        contact_reminder_seconds=0,
    )
    await build(url, large.SCALES[options.scale], settings, phase="activities")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.database
        if database.backend == "postgresql":
            async with database.transaction() as session:
                await session.exec(text("ANALYZE"))
        emails, entity = await actors(database)
        print(f"backend: {database.backend}; {await describe(database, entity)}")
        export = f"/api/v1/activities/export?format=csv&year={options.year}"
        paths = [BASELINE, MATRIX, f"{MATRIX}?year={options.year}", PAGE, export]
        clients: dict[str, httpx.AsyncClient] = {}
        routes: list[Route] = []
        for caller in emails:
            clients[caller] = new_client(app)
            await sign_in(clients[caller], emails[caller], DEMO_PASSWORD)
            routes.extend(
                Route(caller, path, options.exports if path == export else options.requests)
                for path in paths
            )
        for route in routes:  # warm-up: caches, prepared statements, the first audit batch
            await _round(clients[route.caller], Route(route.caller, route.path, options.warm_up))
        for _ in range(options.rounds):
            for route in routes:
                await _round(clients[route.caller], route)
        for http in clients.values():
            await http.aclose()
    print(f"{options.rounds} rounds; p50 / p99 in ms over every sample; ratio to the baseline")
    for caller in emails:
        print(f"\n{caller} ({emails[caller]})")
        own = [route for route in routes if route.caller == caller]
        baseline = own[0]
        for route in own:
            ratios = [
                statistics.median(mine) / statistics.median(base)
                for mine, base in zip(route.rounds, baseline.rounds, strict=True)
            ]
            samples = route.samples
            print(
                f"  {route.path:<52} p50 {ms(statistics.median(samples)):>7}"
                f"  p99 {ms(p99(samples)):>7}  x{statistics.median(ratios):.2f}"
                f"  ({route.shown:,} shown, {route.size:,} bytes, {len(samples)} requests)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(large.SCALES), default="large")
    parser.add_argument("--requests", type=int, default=100, help="per route and round")
    parser.add_argument("--exports", type=int, default=20, help="per export and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=5, help="requests per route, unmeasured")
    parser.add_argument("--year", type=int, default=2026, help="the year of the export")
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'planning.db'}"
        prepare(url)
        asyncio.run(run(options, url, Path(folder)))


if __name__ == "__main__":
    main()
