"""PostgreSQL stopped under load: 503 problems while it is down, and recovery by itself.

The app runs on a private cluster of the test's own, which is stopped with `pg_ctl stop
-m immediate` (what a crash or a failover looks like to the app) while clients keep
sending. While it is down every API answer is a quick 503 problem with nothing of the
database in it, `/readyz` says the database is unreachable and `/healthz` (the process
is alive) stays 200; once it is back, the same app process serves again.
"""

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from ctcp.core.db import CONNECT_TIMEOUT_SECONDS, Database
from tests.conftest import prepare
from tests.factories import make_org, make_user
from tests.faults.conftest import PrivateCluster, live_client, live_sign_in
from tests.servers import AppServer

# "Never hangs": generous for a loaded 2-core machine, far below any client's patience.
QUICK_SECONDS = 5.0
RECOVERY_SECONDS = 10.0
# Words that would show the database behind a 503.
INTERNALS = ("asyncpg", "postgres", "sqlalchemy", "Traceback", "SELECT", "connect", "5432")


@dataclass
class Answer:
    phase: str  # the phase it was sent in, or "edge" if the phase changed before it came back
    seconds: float
    status: int
    content_type: str
    body: str


@dataclass
class Traffic:
    phase: str = "up"
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, phase: str) -> list[Answer]:
        return [answer for answer in self.answers if answer.phase == phase]


def _report(state: str) -> dict[str, Any]:
    return {
        "state": state,
        "title": "Under load",
        "kind": "focused",
        "visit_start": "2026-06-01",
        "visit_end": "2026-06-02",
        "sections": [{"area": "legislation", "title": "L", "body": "Law."}],
    }


async def _send(traffic: Traffic, client: httpx.AsyncClient, state: str, write: bool) -> Answer:
    phase, sent = traffic.phase, time.monotonic()
    if write:
        response = await client.post("/api/v1/reports", json=_report(state))
    else:
        response = await client.get("/api/v1/reports", params={"state": state})
    answer = Answer(
        phase if traffic.phase == phase else "edge",
        time.monotonic() - sent,
        response.status_code,
        response.headers.get("content-type", ""),
        response.text,
    )
    traffic.answers.append(answer)
    return answer


async def _steady(traffic: Traffic, client: httpx.AsyncClient, state: str, write: bool) -> None:
    """One client's requests back to back: list reports, or draft one."""
    while not traffic.stop.is_set():
        await _send(traffic, client, state, write)
        await asyncio.sleep(0.01)


def _assert_unavailable_problem(answer: Answer, within: float = QUICK_SECONDS) -> None:
    assert answer.status == 503, answer
    assert answer.content_type == "application/problem+json", answer
    assert all(word.lower() not in answer.body.lower() for word in INTERNALS), answer.body
    assert answer.seconds < within, answer


def _silent_listener(port: int) -> socket.socket:
    """A port that accepts connections and never says a word: a hung or partitioned server."""
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", port))
    silent.listen(256)
    return silent


async def _until_served(traffic: Traffic, client: httpx.AsyncClient, state: str) -> int | None:
    """Write until one succeeds (at most RECOVERY_SECONDS); how many failed first."""
    failed, started = 0, time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        if (await _send(traffic, client, state, write=True)).status == 201:
            return failed
        failed += 1
        await asyncio.sleep(0.05)
    return None


@pytest.mark.postgresql_only
async def test_postgresql_down_gives_quick_503s_and_the_app_recovers_by_itself(
    database_url: str,
    private_cluster: PrivateCluster,
    start_server: Callable[..., AppServer],
) -> None:
    url = make_url(private_cluster.url).set(database="ctcp").render_as_string(False)
    await asyncio.to_thread(private_cluster.create_database, "ctcp")
    await asyncio.to_thread(prepare, url)
    database = Database(url)
    state = await make_org(database)
    users = [await make_user(database, roles=("cted_analyst",)) for _ in range(4)]
    await database.dispose()
    server = start_server(url)
    clients = [live_client(server.base) for _ in users]
    probe = live_client(server.base)
    for client, user in zip(clients, users, strict=True):
        await live_sign_in(client, user.email)
    traffic = Traffic()
    senders = [
        asyncio.create_task(_steady(traffic, client, state.code, write=index % 2 == 0))
        for index, client in enumerate(clients)
    ]
    probes: dict[str, httpx.Response] = {}
    timings: dict[str, float] = {}
    try:
        await asyncio.sleep(1.0)
        # 1. Down: every connection refused.
        traffic.phase = "stopping"
        await asyncio.to_thread(private_cluster.stop, "immediate")
        traffic.phase = "refused"
        await asyncio.sleep(2.0)
        probes["readyz"] = await probe.get("/readyz")
        probes["healthz"] = await probe.get("/healthz")
        # 2. Still down, but the port accepts and never answers (a hung host).
        traffic.phase = "silent-start"
        silent = _silent_listener(private_cluster.port)
        traffic.phase = "silent"
        try:
            probes["readyz-silent"] = await probe.get("/readyz")
            # Long enough for requests sent after the probe to hit the connect timeout too,
            # however slow the machine.
            await asyncio.sleep(CONNECT_TIMEOUT_SECONDS + 3)
            traffic.phase = "silent-end"
        finally:
            silent.close()
        # 3. Back: the same app process serves again, by itself.
        await asyncio.to_thread(private_cluster.start)
        traffic.phase = "starting"
        up_at = time.monotonic()
        failed = await _until_served(traffic, clients[0], state.code)
        assert failed is not None, server.log()[-3000:]
        timings["recovery after start s"] = time.monotonic() - up_at
        traffic.phase = "recovered"
        await asyncio.sleep(1.0)
        traffic.stop.set()
        await asyncio.wait_for(asyncio.gather(*senders), timeout=30)
        probes["readyz-again"] = await probe.get("/readyz")
        # 4. A quick restart while idle: every pooled connection is stale, none is pinged.
        traffic.phase = "restart"
        await asyncio.to_thread(private_cluster.stop, "immediate")
        await asyncio.to_thread(private_cluster.start)
        traffic.phase = "after-restart"
        stale_failures = await _until_served(traffic, clients[1], state.code)
        assert stale_failures is not None, server.log()[-3000:]
        for client in clients:
            for write in (False, True):
                assert (await _send(traffic, client, state.code, write)).status in (200, 201)
    finally:
        traffic.stop.set()
        for client in [*clients, probe]:
            await client.aclose()

    ready = probes["readyz"]
    assert ready.status_code == 503 and ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["detail"] == "The database is not reachable."
    assert probes["readyz-silent"].status_code == 503
    assert probes["healthz"].status_code == 200  # the process is alive: no restart wanted
    assert probes["readyz-again"].status_code == 200

    assert traffic.of("up") and traffic.of("refused") and traffic.of("silent")
    assert {a.status for a in traffic.of("up")} <= {200, 201}
    for answer in traffic.of("refused"):
        _assert_unavailable_problem(answer)
    for answer in traffic.of("silent"):
        _assert_unavailable_problem(answer, within=CONNECT_TIMEOUT_SECONDS + QUICK_SECONDS)
    for phase in ("recovered", "after-restart"):
        assert {a.status for a in traffic.of(phase)} - {503} <= {200, 201}
    assert {a.status for a in traffic.of("recovered")} <= {200, 201}
    # Around the edges a request may get either answer: a 503 or a success, nothing else.
    assert {a.status for a in traffic.answers} <= {200, 201, 503}
    for answer in traffic.answers:
        if answer.status == 503:
            _assert_unavailable_problem(answer, within=CONNECT_TIMEOUT_SECONDS + QUICK_SECONDS)

    def figures(phase: str) -> str:
        seconds = sorted(a.seconds for a in traffic.of(phase))
        return f"n={len(seconds)} p50={seconds[len(seconds) // 2]:.3f}s max={seconds[-1]:.3f}s"

    print(
        f"\nrefused: {figures('refused')}; silent: {figures('silent')}; "
        f"recovery {timings['recovery after start s']:.2f}s after start ({failed} failed first);"
        f" idle restart: {stale_failures} request(s) failed before the first success"
    )
