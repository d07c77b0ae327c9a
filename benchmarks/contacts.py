"""The directory of contact points on the large data set: a filtered page and an export.

On `ctcp demo --scale large` (built here unless the database holds it already: 59 States'
entries, ~400 of them with their versions, among 20,000 users and 1,000,000 audit
events), in one process (httpx in-process, no network), signed in as generated users
with the demo password:

- a Compact entity's focal point and a State's focal point (of a State with entries):
  `GET /api/v1/contact-points?language=fr&limit=50` and `?q=WORD&limit=50`;
- a CTED analyst: `GET /api/v1/contact-points/export?format=csv` and `?format=vcard`
  (every entry, the Secretariat seeing them all);
- for each of them, the baseline in the same run: `GET /api/v1/organizations?limit=50`,
  the same session, guard and audited page of 50 over a table that needs no filter.

Rounds interleave the routes; p50 and p99 are over every sample of every round, the
ratio to the baseline is the median of the rounds' p50 ratios.

    PYTHONPATH=. .venv/bin/python benchmarks/contacts.py [--scale large] [--requests 200]
        [--exports 60] [--rounds 3] [--q urgent]
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
from ctcp.contacts.models import ContactPoint
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.models import User, UserRole
from ctcp.organizations.models import Organization
from ctcp_demo import large
from ctcp_demo.content import DEMO_PASSWORD

BASELINE = "/api/v1/organizations?limit=50"
FRENCH = "/api/v1/contact-points?language=fr&limit=50"
EXPORTS = (
    "/api/v1/contact-points/export?format=csv",
    "/api/v1/contact-points/export?format=vcard",
)


@dataclass
class Route:
    """One caller's route, and what it took, round by round."""

    caller: str
    path: str
    requests: int
    rounds: list[list[float]] = field(default_factory=list)
    shown: int = 0  # entries in the last answer
    size: int = 0  # bytes of the last answer

    @property
    def samples(self) -> list[float]:
        return [sample for round_ in self.rounds for sample in round_]


def _entries(path: str, response: httpx.Response) -> int:
    if "format=vcard" in path:
        return response.text.count("BEGIN:VCARD")
    if "format=csv" in path:
        return max(0, len(response.text.splitlines()) - 1)
    return len(response.json()["items"])


async def _round(http: httpx.AsyncClient, route: Route) -> None:
    samples = []
    for _ in range(route.requests):
        started = time.perf_counter()
        response = await http.get(route.path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
    route.rounds.append(samples)
    route.shown, route.size = _entries(route.path, response), len(response.content)


async def actors(database: Database) -> dict[str, str]:
    """The e-mails of an entity's focal point, a State's (with entries) and an analyst."""

    def holder(role: str) -> SelectOfScalar[str]:
        return (
            select(User.email)
            .join(UserRole, col(UserRole.user_id) == col(User.id))
            .join(Organization, col(Organization.id) == col(User.organization_id))
            .where(col(UserRole.role) == role)
            .order_by(col(User.email))
            .limit(1)
        )

    async with database.sessionmaker() as session:
        with_entries = select(ContactPoint.state_id).distinct()
        state = holder("state_focal_point").where(col(User.organization_id).in_(with_entries))
        entity = holder("entity_focal_point").where(col(Organization.kind) == "compact_entity")
        return {
            "entity focal point": (await session.exec(entity)).one(),
            "State focal point": (await session.exec(state)).one(),
            "CTED analyst": (await session.exec(holder("cted_analyst"))).one(),
        }


async def describe(database: Database) -> str:
    async with database.sessionmaker() as session:
        entries, states = (
            await session.exec(
                select(func.count(), func.count(col(ContactPoint.state_id).distinct()))
            )
        ).one()
        users = (await session.exec(select(func.count()).select_from(User))).one()
    return f"{entries:,} contact points of {states} States; {users:,} users"


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
    await build(url, large.SCALES[options.scale], settings, phase="contact points")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.database
        if database.backend == "postgresql":
            async with database.transaction() as session:
                await session.exec(text("ANALYZE"))
        print(f"backend: {database.backend}; {await describe(database)}")
        page, export = options.requests, options.exports
        pages = [BASELINE, FRENCH, f"/api/v1/contact-points?q={options.q}&limit=50"]
        plan = {
            "entity focal point": pages,
            "State focal point": pages,
            "CTED analyst": [BASELINE, *EXPORTS],
        }
        emails = await actors(database)
        clients: dict[str, httpx.AsyncClient] = {}
        routes: list[Route] = []
        for caller, paths in plan.items():
            clients[caller] = new_client(app)
            await sign_in(clients[caller], emails[caller], DEMO_PASSWORD)
            routes.extend(
                Route(caller, path, export if path in EXPORTS else page) for path in paths
            )
        for route in routes:  # warm-up: caches, prepared statements, the first audit batch
            await _round(clients[route.caller], Route(route.caller, route.path, 10))
        for _ in range(options.rounds):
            for route in routes:
                await _round(clients[route.caller], route)
        for http in clients.values():
            await http.aclose()
    print(f"{options.rounds} rounds; p50 / p99 in ms over every sample; ratio to the baseline")
    for caller in plan:
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
                f"  {route.path:<48} p50 {ms(statistics.median(samples)):>7}"
                f"  p99 {ms(p99(samples)):>7}  x{statistics.median(ratios):.2f}"
                f"  ({route.shown} entries, {route.size:,} bytes, {len(samples)} requests)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(large.SCALES), default="large")
    parser.add_argument("--requests", type=int, default=200, help="per page route and round")
    parser.add_argument("--exports", type=int, default=60, help="per export route and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--q", default="urgent", help="the word searched in names and notes")
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'contacts.db'}"
        prepare(url)
        asyncio.run(run(options, url, Path(folder)))


if __name__ == "__main__":
    main()
