"""A reference consumer of the change feed: a local SQLite mirror of exactly what one API
client may read (`ctcp sync pull`).

Written as an outside system would write it — the standard library and httpx, nothing of
the server — so it can be copied as an example:

1. get a token by OAuth2 client credentials (`POST /oauth/token`, HTTP Basic);
2. read `GET /api/v1/changes` from the cursor the mirror holds, page after page while
   `has_more`;
3. apply each page and its `next_cursor` in ONE SQLite transaction: an `upsert` replaces
   the object, a `revoke` deletes it. A crash between pages loses nothing: the next run
   resumes from the last page applied, and applying a page twice gives the same mirror;
4. on 410 (the cursor is older than the feed keeps, or the kinds the client is granted
   changed since it was made) clear the mirror and read again without a cursor; on 401
   (the token expired or was revoked) get a new token, once.

The mirror's tables: `feed_objects (type, id, json, seq)` and `feed_cursor (cursor,
types)`. The file is created readable by its owner only (0600: it holds what the client
may read). A mirror follows the types it was built with: a pull with other types is
refused (the server refuses to widen a cursor's types, and narrowing them would skip the
other kinds' revokes, leaving withdrawn objects in the mirror) — start a new mirror.

The platform is reached over https only (the client secret goes in every token
request), except on a loopback address (a development server) or with `insecure=True`.
"""

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger("ctcp.changes.consumer")

CHANGES_PATH = "/api/v1/changes"
GRANT_PATH = "/oauth/token"  # OAuth2 client credentials
# How many 410 answers in a row one pull accepts before giving up: a resynchronisation
# that outlives the retention window again means something is wrong.
MAX_RESETS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_objects (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    json TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE TABLE IF NOT EXISTS feed_cursor (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    cursor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feed_types (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    types TEXT NOT NULL
);
"""
# The types of a mirror that follows every kind the client reads.
ALL_TYPES = "*"


class FeedError(Exception):
    """The feed or the token endpoint refused, or answered what this consumer cannot use."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Mirror:
    """The local copy: objects by (type, id), and the cursor to resume from."""

    def __init__(self, path: str | Path) -> None:
        # Owner only, before SQLite opens it (its -wal and -shm files take the same mode).
        if str(path) != ":memory:":
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
        # Autocommit mode: every transaction is an explicit BEGIN ... COMMIT below.
        self.connection = sqlite3.connect(str(path), isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.executescript(_SCHEMA)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "Mirror":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def cursor(self) -> str | None:
        row = self.connection.execute("SELECT cursor FROM feed_cursor").fetchone()
        return None if row is None else str(row[0])

    @property
    def types(self) -> str | None:
        """The types the mirror follows (`ALL_TYPES`, or sorted kinds joined by commas);
        None for a mirror never pulled (a mirror from before types were kept, holding a
        cursor, followed every type)."""
        row = self.connection.execute("SELECT types FROM feed_types").fetchone()
        if row is None:
            return None if self.cursor is None else ALL_TYPES
        return str(row[0])

    def apply(
        self, items: Iterable[Mapping[str, Any]], next_cursor: str, types: str = ALL_TYPES
    ) -> tuple[int, int]:
        """Apply one page, in order, with its cursor and the types it was read with,
        atomically: (upserts, revokes)."""
        upserts = revokes = 0
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                key = (str(item["type"]), str(item["id"]))
                if item["op"] == "upsert":
                    db.execute(
                        "INSERT INTO feed_objects (type, id, json, seq) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (type, id) DO UPDATE SET json = excluded.json, "
                        "seq = excluded.seq",
                        (*key, json.dumps(item["object"], sort_keys=True), int(item["seq"])),
                    )
                    upserts += 1
                elif item["op"] == "revoke":
                    db.execute("DELETE FROM feed_objects WHERE type = ? AND id = ?", key)
                    revokes += 1
                else:
                    raise FeedError(f"unknown op {item['op']!r} in entry {item.get('seq')}")
            db.execute(
                "INSERT INTO feed_cursor (one, cursor) VALUES (1, ?) "
                "ON CONFLICT (one) DO UPDATE SET cursor = excluded.cursor",
                (next_cursor,),
            )
            db.execute(
                "INSERT INTO feed_types (one, types) VALUES (1, ?) "
                "ON CONFLICT (one) DO UPDATE SET types = excluded.types",
                (types,),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return upserts, revokes

    def clear(self) -> None:
        """Forget every object and the cursor (the feed answered 410)."""
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM feed_objects")
        db.execute("DELETE FROM feed_cursor")
        db.execute("DELETE FROM feed_types")
        db.execute("COMMIT")

    def objects(self, type_: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """The mirrored objects by (type, id), or those of one type."""
        query = "SELECT type, id, json FROM feed_objects"
        rows = (
            self.connection.execute(query)
            if type_ is None
            else self.connection.execute(query + " WHERE type = ?", (type_,))
        )
        return {(kind, object_id): json.loads(text) for kind, object_id, text in rows}


@dataclass
class PullReport:
    """What one pull did."""

    pages: int = 0
    upserts: int = 0
    revokes: int = 0
    resets: int = 0  # 410 answers: the mirror was cleared and read again
    tokens: int = 0  # tokens requested
    cursor: str | None = None
    seen: list[int] = field(default_factory=list)  # the entry numbers applied, in order


class FeedConsumer:
    """Follows one API client's change feed into a `Mirror`.

    `http` is any httpx client whose base URL is the platform's (tests hand one over an
    in-process transport); it is not closed here. Its base URL must be https, unless its
    host is a loopback address or `insecure` is set (development only).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        mirror: Mirror,
        *,
        client_id: str,
        client_secret: str,
        page_size: int = 200,
        types: Iterable[str] | None = None,
        insecure: bool = False,
    ) -> None:
        check_base_url(http.base_url, insecure=insecure)
        self.http = http
        self.mirror = mirror
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size
        kinds = sorted({kind.strip() for kind in types or () if kind.strip()})
        self.types = ",".join(kinds) if kinds else None
        self._token: str | None = None

    async def _new_token(self, report: PullReport) -> str:
        response = await self.http.post(
            GRANT_PATH,
            data={"grant_type": "client_credentials"},
            auth=(self.client_id, self.client_secret),
        )
        report.tokens += 1
        if response.status_code != 200:
            raise FeedError(
                f"token refused ({response.status_code}): {_reason(response)}",
                response.status_code,
            )
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise FeedError("the token endpoint answered no access_token")
        self._token = token
        return token

    async def _page(self, cursor: str | None, report: PullReport) -> httpx.Response:
        """One GET of the feed; on 401, once more with a new token."""
        params = {"limit": str(self.page_size)}
        if cursor is not None:
            params["cursor"] = cursor
        if self.types:
            params["types"] = self.types
        token = self._token or await self._new_token(report)
        for attempt in range(2):
            response = await self.http.get(
                CHANGES_PATH, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code != 401 or attempt == 1:
                return response
            token = await self._new_token(report)
        raise AssertionError("unreachable")  # pragma: no cover

    async def pull(self) -> PullReport:
        """Read the feed from the mirror's cursor up to its head, applying every page."""
        report = PullReport()
        cursor = self.mirror.cursor
        followed = self.mirror.types
        wanted = self.types or ALL_TYPES
        if cursor is not None and followed not in (None, wanted):
            raise FeedError(
                f"this mirror follows the types {followed!r}, not {wanted!r}: pull with "
                "the same types, or into a new mirror (narrowing would miss the other "
                "kinds' revokes and keep withdrawn objects)"
            )
        while True:
            response = await self._page(cursor, report)
            if response.status_code == 410:
                # Past retention, the kinds granted changed, or (without a cursor) a
                # retention pass ran while the first page was read: begin again.
                report.resets += 1
                if report.resets > MAX_RESETS:
                    raise FeedError("the feed answered 410 again and again: giving up")
                self.mirror.clear()
                cursor = None
                continue
            if response.status_code != 200:
                raise FeedError(
                    f"the feed answered {response.status_code}: {_reason(response)}",
                    response.status_code,
                )
            page = response.json()
            items = page["items"]
            upserts, revokes = self.mirror.apply(items, page["next_cursor"], wanted)
            report.pages += 1
            report.upserts += upserts
            report.revokes += revokes
            report.seen.extend(int(item["seq"]) for item in items)
            cursor = report.cursor = page["next_cursor"]
            if not page["has_more"]:
                return report

    async def follow(self, interval: float, stop: asyncio.Event | None = None) -> None:
        """Pull, then again every `interval` seconds, until `stop` is set. The server
        being unreachable or failing (5xx) is waited out; a refusal ends it."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.pull()
            except httpx.TransportError as error:
                logger.warning("change feed unreachable, retrying: %s", error)
            except FeedError as error:
                if error.status is None or error.status < 500:
                    raise
                logger.warning("change feed failed, retrying: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def check_base_url(url: httpx.URL, *, insecure: bool = False) -> None:
    """FeedError unless the platform is reached over https (plain http only to a loopback
    host, or when `insecure` is set): the client secret and tokens travel in every request."""
    if url.scheme == "https" or insecure:
        return
    host = url.host.lower()
    if url.scheme == "http":
        if host == "localhost":
            return
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_loopback:
                return
    raise FeedError(
        f"refusing {url.scheme}://{host}: the platform must be reached over https "
        "(plain http only on a loopback address, or with --insecure for development)"
    )


def _reason(response: httpx.Response) -> str:
    """The problem's detail (RFC 9457) or OAuth error (RFC 6749), else the status line."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "error_description", "error", "title"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return response.reason_phrase


async def pull_into(
    path: str | Path,
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    transport: httpx.AsyncBaseTransport | None = None,
    types: Iterable[str] | None = None,
    insecure: bool = False,
) -> tuple[PullReport, int]:
    """One pull into the mirror at `path`: the report and how many objects it now holds."""
    check_base_url(httpx.URL(base_url), insecure=insecure)
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30) as http:
        with Mirror(path) as mirror:
            consumer = FeedConsumer(
                http,
                mirror,
                client_id=client_id,
                client_secret=client_secret,
                types=types,
                insecure=insecure,
            )
            report = await consumer.pull()
            return report, len(mirror.objects())
