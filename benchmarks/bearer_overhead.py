"""What a bearer request costs next to a session request: token lookup plus rate limits.

Same route (`GET /api/v1/publications?limit=1`), same organization's rights, one process
(httpx in-process, no network): (a) an entity focal point's session cookie, (b) an API
client's bearer token (lookup, two rate-limit counters in their own transaction, scope
narrowing). Rounds interleave; medians of per-request time are compared.

    .venv/bin/python benchmarks/bearer_overhead.py [--requests 400] [--rounds 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB]   # default: a new SQLite file
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.conftest import prepare
from tests.factories import (
    make_api_client,
    make_user,
    new_client,
    oauth_http,
    request_token,
    sign_in,
)

from ctcp.app import create_app
from ctcp.core.config import Settings


async def _timed(http: httpx.AsyncClient, requests: int) -> float:
    """Median microseconds per request."""
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await http.get("/api/v1/publications", params={"limit": 1})
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(samples) * 1e6


async def run(database_url: str, requests: int, rounds: int, var_dir: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=database_url,
        var_dir=var_dir,
        secret_key="bench-secret-key-" + "x" * 32,
        rate_limit_per_client=10**9,
        rate_limit_per_address=10**9,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.database
        focal_point = await make_user(
            database, roles=("entity_focal_point",), kind="compact_entity"
        )
        credentials = await make_api_client(database, org=None)
        session_http = new_client(app)
        await sign_in(session_http, focal_point.email)
        bearer = oauth_http(app)
        async with oauth_http(app) as token_http:
            token = (await request_token(token_http, credentials)).json()["access_token"]
        bearer.headers["Authorization"] = f"Bearer {token}"
        await _timed(session_http, 50)  # warm-up
        await _timed(bearer, 50)
        print(f"backend: {database.backend}, {requests} requests per round")
        ratios = []
        for number in range(1, rounds + 1):
            session_us = await _timed(session_http, requests)
            bearer_us = await _timed(bearer, requests)
            ratios.append(session_us / bearer_us)
            print(
                f"round {number}: session {session_us:,.0f} µs, bearer {bearer_us:,.0f} µs,"
                f" bearer costs +{bearer_us - session_us:,.0f} µs (ratio {ratios[-1]:.2f})"
            )
        print(f"median ratio (session / bearer time): {statistics.median(ratios):.2f}")
        await session_http.aclose()
        await bearer.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        prepare(url)
        asyncio.run(run(url, options.requests, options.rounds, Path(folder)))


if __name__ == "__main__":
    main()
