"""The reference consumer (`ctcp.changes.consumer`, `ctcp sync pull`): a SQLite mirror that
follows an API client's change feed — upserts replace, revokes delete, a page and its
cursor in one transaction, a new token on 401, a fresh start on 410."""

import asyncio
import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.changes import service as changes_service
from ctcp.changes.consumer import MAX_RESETS, FeedConsumer, FeedError, Mirror
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.assistance.conftest import Assist, build_world
from tests.factories import (
    ApiClientCredentials,
    bearer_http,
    make_api_client,
    make_publication,
    oauth_http,
    run_ctcp,
)
from tests.servers import AppServer

READ_SCOPES = (
    "publications:read",
    "needs:read",
    "requests:read",
    "contacts:read",
    "activities:read",
)


class Counting(httpx.AsyncBaseTransport):
    """An in-process transport that counts the requests to each path."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


def consumer(
    app: FastAPI,
    credentials: ApiClientCredentials,
    path: Path,
    types: list[str] | None = None,
    mirror: Mirror | None = None,
) -> tuple[FeedConsumer, Counting]:
    transport = Counting(app)
    http = httpx.AsyncClient(transport=transport, base_url="https://ctcp.test")
    return (
        FeedConsumer(
            http,
            mirror or Mirror(path),
            client_id=credentials.client_id,
            client_secret=credentials.secret,
            types=types,
        ),
        transport,
    )


async def listed(http: httpx.AsyncClient, path: str, **params: str) -> dict[str, dict[str, Any]]:
    """Every item of a list the caller reads, page after page, by id."""
    items: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        response = await http.get(path, params=params | {"limit": "200"} | _c(cursor))
        assert response.status_code == 200, response.text
        body = response.json()
        items.update({item["id"]: item for item in body["items"]})
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def _c(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


async def withdraw(officer: httpx.AsyncClient, report_id: str) -> None:
    withdrawn = await officer.post(
        f"/api/v1/reports/{report_id}/consent/withdraw", json={"reason": "Withdrawn."}
    )
    assert withdrawn.status_code == 201, withdrawn.text


async def test_pull_mirrors_what_the_client_reads_and_forgets_what_it_no_longer_may(
    app: FastAPI, database: Database, assist: Assist, tmp_path: Path
) -> None:
    credentials = await make_api_client(database, org=assist.entity, scopes=READ_SCOPES)
    published = await make_publication(app, database)
    need = await assist.need()
    await assist.share_needs()
    follower, transport = consumer(app, credentials, tmp_path / "mirror.db")
    first = await follower.pull()
    assert first.tokens == 1 and first.resets == 0
    mirror = follower.mirror.objects()
    async with await bearer_http(app, credentials) as reader:
        publications = await listed(reader, "/api/v1/publications", state=published.state.code)
        needs = await listed(reader, "/api/v1/needs", state=assist.state.code)
    assert (
        mirror[("publication", published.publication_id)] == publications[published.publication_id]
    )
    assert mirror[("need", need["id"])] == needs[need["id"]]
    # The cursor is kept in the mirror: a second pull starts where the first ended.
    assert follower.mirror.cursor == first.cursor
    again = await follower.pull()
    assert again.tokens == 0 and again.pages == 1
    assert not {s for s in again.seen if s <= max(first.seen)}

    await withdraw(published.officer, published.report_id)
    pulled = await follower.pull()
    assert pulled.revokes >= 1
    assert ("publication", published.publication_id) not in follower.mirror.objects()
    assert ("need", need["id"]) in follower.mirror.objects()
    assert transport.paths.count("/oauth/token") == 1
    # A mirror opened afresh on the same file resumes from its stored cursor.
    follower.mirror.close()
    with Mirror(tmp_path / "mirror.db") as reopened:
        assert reopened.cursor == pulled.cursor
        assert ("publication", published.publication_id) not in reopened.objects()
    for http in (published.analyst, published.officer, follower.http):
        await http.aclose()


async def test_a_page_and_its_cursor_are_applied_together_or_not_at_all(tmp_path: Path) -> None:
    with Mirror(tmp_path / "mirror.db") as mirror:
        mirror.apply(
            [{"seq": 1, "type": "need", "id": "a", "op": "upsert", "object": {"id": "a"}}],
            "c1.MQ",
        )
        broken = [
            {"seq": 2, "type": "need", "id": "a", "op": "revoke"},
            {"seq": 3, "type": "need", "id": "b", "op": "erase"},
        ]
        with pytest.raises(FeedError):
            mirror.apply(broken, "c1.Mw")
        assert mirror.cursor == "c1.MQ"
        assert mirror.objects() == {("need", "a"): {"id": "a"}}
    tables = sqlite3.connect(tmp_path / "mirror.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    )
    assert [name for (name,) in tables] == ["feed_cursor", "feed_objects", "feed_types"]


async def test_a_revoked_token_is_replaced_once(
    app: FastAPI, database: Database, tmp_path: Path
) -> None:
    credentials = await make_api_client(database, scopes=READ_SCOPES)
    follower, transport = consumer(app, credentials, tmp_path / "mirror.db")
    await follower.pull()
    async with oauth_http(app) as http:
        revoked = await http.post(
            "/oauth/revoke",
            data={"token": follower._token or ""},
            auth=(credentials.client_id, credentials.secret),
        )
    assert revoked.status_code == 200, revoked.text
    report = await follower.pull()
    assert report.tokens == 1
    assert transport.paths.count("/oauth/token") == 2
    # A client that may not have a token at all: the pull fails, saying why.
    follower.client_secret = "not-the-secret"
    follower._token = None
    with pytest.raises(FeedError, match="token refused \\(401\\)"):
        await follower.pull()
    await follower.http.aclose()
    follower.mirror.close()


async def test_a_first_read_that_meets_retention_is_begun_again(tmp_path: Path) -> None:
    """Without a cursor, the feed answers 410 when a retention pass ran during the first
    page: the consumer begins again, and gives up only when it keeps happening."""
    page = {
        "items": [{"seq": 7, "type": "need", "id": "a", "op": "upsert", "object": {"id": "a"}}],
        "next_cursor": "c1.Nw",
        "has_more": False,
    }
    gone = {"title": "Gone", "detail": "The feed applied its retention while this read began."}
    answers: list[int] = []

    def feed(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer"})
        assert "cursor" not in request.url.params
        status = 410 if len(answers) < limit_of_410 else 200
        answers.append(status)
        return httpx.Response(status, json=gone if status == 410 else page)

    limit_of_410 = 1
    http = httpx.AsyncClient(transport=httpx.MockTransport(feed), base_url="https://ctcp.test")
    with Mirror(tmp_path / "mirror.db") as mirror:
        follower = FeedConsumer(http, mirror, client_id="c", client_secret="s")
        report = await follower.pull()
        assert (answers, report.resets) == ([410, 200], 1)
        assert mirror.objects() == {("need", "a"): {"id": "a"}} and mirror.cursor == "c1.Nw"
    answers.clear()
    limit_of_410 = 100
    with Mirror(tmp_path / "again.db") as mirror:
        follower = FeedConsumer(http, mirror, client_id="c", client_secret="s")
        with pytest.raises(FeedError, match="410 again and again"):
            await follower.pull()
        assert answers == [410] * (MAX_RESETS + 1) and mirror.objects() == {}
    await http.aclose()


@pytest.fixture
async def own_app(fresh_database_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    """The app on a database of its own: retention may remove entries there without
    touching the cursors of other tests."""
    application = create_app(settings.model_copy(update={"database_url": fresh_database_url}))
    async with application.router.lifespan_context(application):
        yield application


async def test_a_cursor_past_retention_clears_the_mirror_and_reads_it_again(
    own_app: FastAPI, tmp_path: Path
) -> None:
    database: Database = own_app.state.database
    world = await build_world(own_app, database)
    credentials = await make_api_client(database, org=world.entity, scopes=READ_SCOPES)
    kept = await world.need()
    gone = await world.need(area="counter_financing")
    await world.share_needs()
    follower, _ = consumer(own_app, credentials, tmp_path / "mirror.db")
    await follower.pull()
    assert {("need", kept["id"]), ("need", gone["id"])} <= follower.mirror.objects().keys()
    # While the mirror is behind, the State stops sharing, then shares again: retention
    # then removes the entries the later ones supersede, past the mirror's cursor.
    withdrawn = await world["officer"].post(
        f"/api/v1/states/{world.state.code}/needs-consent/withdraw", json={"reason": "Paused."}
    )
    assert withdrawn.status_code == 201, withdrawn.text
    await world.share_needs()
    stale = follower.mirror.cursor
    async with database.transaction() as session:
        removed = await changes_service.purge(session, clock.now() + timedelta(seconds=1))
    assert removed > 0
    async with await bearer_http(own_app, credentials) as reader:
        answer = await reader.get("/api/v1/changes", params={"cursor": stale})
        assert answer.status_code == 410, answer.text
        report = await follower.pull()
        assert report.resets == 1
        needs = await listed(reader, "/api/v1/needs")
        publications = await listed(reader, "/api/v1/publications")
    mirrored = follower.mirror.objects()
    assert {object_id for (kind, object_id) in mirrored if kind == "need"} == needs.keys()
    assert all(mirrored[("need", i)] == item for i, item in needs.items())
    assert {i for (kind, i) in mirrored if kind == "publication"} == publications.keys()
    await follower.http.aclose()
    follower.mirror.close()
    for http in world.clients.values():
        await http.aclose()


async def test_cli_pulls_from_a_real_server(
    app: FastAPI,
    database: Database,
    database_url: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    credentials = await make_api_client(database, scopes=READ_SCOPES)
    published = await make_publication(app, database)
    server = AppServer(database_url, settings, log_name="sync-pull")
    base = await asyncio.to_thread(server.start)
    mirror_path = tmp_path / "mirror.db"
    env = {"CTCP_SYNC_CLIENT_SECRET": credentials.secret}
    args = ("sync", "pull", "--base-url", base, "--client-id", credentials.client_id)
    try:
        code, output = await asyncio.to_thread(run_ctcp, env, *args, "--into", str(mirror_path))
        assert code == 0, output
        assert "upserts" in output
        with Mirror(mirror_path) as mirror:
            copy = mirror.objects("publication")[("publication", published.publication_id)]
        async with await bearer_http(app, credentials) as reader:
            shown = await reader.get(f"/api/v1/publications/{published.publication_id}")
        assert copy == shown.json()

        await withdraw(published.officer, published.report_id)
        code, output = await asyncio.to_thread(run_ctcp, env, *args, "--into", str(mirror_path))
        assert code == 0, output
        with Mirror(mirror_path) as mirror:
            assert ("publication", published.publication_id) not in mirror.objects()

        wrong = {"CTCP_SYNC_CLIENT_SECRET": "not-the-secret"}
        code, output = await asyncio.to_thread(run_ctcp, wrong, *args, "--into", str(mirror_path))
        assert code == 1
        assert "token refused" in output
    finally:
        await asyncio.to_thread(server.stop)
        await published.analyst.aclose()
        await published.officer.aclose()


def test_cli_takes_no_secret_on_the_command_line() -> None:
    code, output = run_ctcp(
        {}, "sync", "pull", "--base-url", "http://x", "--client-id", "c", "--secret", "s"
    )
    assert code == 2
    assert "No such option" in output


async def test_a_mirror_keeps_its_types_and_refuses_a_pull_with_others(
    app: FastAPI, database: Database, assist: Assist, tmp_path: Path
) -> None:
    """Narrowing would skip the other kinds' revokes (a withdrawn need would stay in the
    mirror), widening is refused by the server: both are refused here, plainly."""
    credentials = await make_api_client(database, org=assist.entity, scopes=READ_SCOPES)
    need = await assist.need()
    await assist.share_needs()
    path = tmp_path / "mirror.db"
    full, _ = consumer(app, credentials, path)
    await full.pull()
    assert ("need", need["id"]) in full.mirror.objects()
    assert full.mirror.types == "*"
    withdrawn = await assist["officer"].post(
        f"/api/v1/states/{assist.state.code}/needs-consent/withdraw",
        json={"reason": "Consultations paused."},
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text
    narrow, transport = consumer(app, credentials, path, ["publication"], mirror=full.mirror)
    cursor = full.mirror.cursor
    with pytest.raises(FeedError, match="follows the types '\\*', not 'publication'"):
        await narrow.pull()
    assert transport.paths == []  # refused before asking anything
    assert full.mirror.cursor == cursor
    # The full pull still works, and the need's revoke arrives.
    await full.pull()
    assert ("need", need["id"]) not in full.mirror.objects()

    # A mirror built with some types accepts them in any order, and no others.
    other = tmp_path / "needs.db"
    some, _ = consumer(app, credentials, other, ["need", "publication"])
    await some.pull()
    assert some.mirror.types == "need,publication"
    again, _ = consumer(app, credentials, other, ["publication", "need"], mirror=some.mirror)
    await again.pull()
    everything, _ = consumer(app, credentials, other, None, mirror=some.mirror)
    with pytest.raises(FeedError, match="new mirror"):
        await everything.pull()
    # A cleared mirror (410) starts again with the types of the pull that rebuilds it.
    some.mirror.clear()
    assert some.mirror.types is None
    for follower in (full, narrow, some, again, everything):
        await follower.http.aclose()
    full.mirror.close()
    some.mirror.close()


def test_the_mirror_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "mirror.db"
    with Mirror(path) as mirror:
        mirror.apply([{"seq": 1, "type": "need", "id": "a", "op": "upsert", "object": {}}], "c")
        for file in (path, path.with_name("mirror.db-wal"), path.with_name("mirror.db-shm")):
            if file.exists():
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    # An existing file with a wider mode is narrowed when opened.
    path.chmod(0o644)
    Mirror(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("base_url", "insecure", "accepted"),
    [
        ("https://ctcp.example.org", False, True),
        ("http://127.0.0.1:8000", False, True),
        ("http://localhost:8000", False, True),
        ("http://[::1]:8000", False, True),
        ("http://ctcp.example.org", False, False),
        ("http://10.0.0.5:8000", False, False),
        ("ftp://ctcp.example.org", False, False),
        ("http://ctcp.example.org", True, True),
    ],
)
async def test_plain_http_is_refused_unless_loopback_or_insecure(
    base_url: str, insecure: bool, accepted: bool, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        with Mirror(tmp_path / "m.db") as mirror:
            if accepted:
                made = FeedConsumer(
                    http, mirror, client_id="c", client_secret="s", insecure=insecure
                )
                assert made.http is http
            else:
                with pytest.raises(FeedError, match="https"):
                    FeedConsumer(http, mirror, client_id="c", client_secret="s", insecure=insecure)


def test_cli_refuses_plain_http_before_anything(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.db"
    env = {"CTCP_SYNC_CLIENT_SECRET": "s"}
    args = ("sync", "pull", "--client-id", "c", "--into", str(mirror))
    code, output = run_ctcp(env, *args, "--base-url", "http://ctcp.example.org")
    assert code == 1 and "https" in output and "--insecure" in output
    assert not mirror.exists()
    # Loopback (or --insecure) goes on, and fails only because nothing listens there.
    code, output = run_ctcp(env, *args, "--base-url", "http://127.0.0.1:9", "--insecure")
    assert code == 1 and "unreachable" in output
