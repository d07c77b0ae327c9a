"""From an assistance event to a mailbox: the app's own background sender, a real SMTP
server (aiosmtpd), exactly one mail per recipient per event."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ctcp.app import create_app
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.assistance.conftest import Assist, build_world
from tests.notifications.conftest import SmtpServer


@pytest.fixture
async def mailing(
    fresh_database_url: str, settings: Settings
) -> AsyncIterator[tuple[Assist, SmtpServer]]:
    """An app on a database of its own, whose lifespan runs the sender against aiosmtpd."""
    server = SmtpServer()
    server.start()
    mail_settings = settings.model_copy(
        update={
            "database_url": fresh_database_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": server.port,
            "notification_poll_seconds": 0.05,
            "public_base_url": "https://ctcp.example.org",
        }
    )
    app = create_app(mail_settings)
    database = Database(fresh_database_url)
    try:
        async with app.router.lifespan_context(app):
            world = await build_world(app, database)
            yield world, server
            for client in world.clients.values():
                await client.aclose()
    finally:
        await database.dispose()
        server.stop()


async def _mail_for(server: SmtpServer, address: str, count: int) -> list[Any]:
    """The messages to `address`, once `count` have arrived (or after 10 seconds)."""
    for _ in range(200):
        found = [m for m in server.messages if m["To"] == address]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return [m for m in server.messages if m["To"] == address]


async def test_circulation_offer_and_acceptance_each_mail_their_recipients_once(
    mailing: tuple[Assist, SmtpServer],
) -> None:
    assist, server = mailing
    email = {
        who: (await assist[who].get("/api/v1/me")).json()["email"]
        for who in ("state", "entity", "other_entity")
    }
    await assist.share_needs()
    request = await assist.circulated()
    for who in ("entity", "other_entity"):
        (circulated,) = await _mail_for(server, email[who], 1)
        assert circulated["Subject"] == "CTCP: a request for technical assistance was circulated"
        assert request["id"] in circulated.get_content()
        assert "https://ctcp.example.org/" in circulated.get_content()
        assert request["title"] not in circulated.get_content(), "no request content in mail"
    offer = (await assist.offer(request["id"])).json()
    (received,) = await _mail_for(server, email["state"], 1)
    assert received["Subject"] == "CTCP: an offer of technical assistance was received"
    await assist["state"].post(f"/api/v1/offers/{offer['id']}/accept")
    to_entity = await _mail_for(server, email["entity"], 2)
    assert [m["Subject"] for m in to_entity][
        -1
    ] == "CTCP: your offer of technical assistance was accepted"
    await asyncio.sleep(0.3)  # several more sender passes: nothing goes out twice
    ids = [str(m["Message-ID"]) for m in server.messages]
    assert len(ids) == len(set(ids)) == 4
    rows = await assist.notifications()
    assert sorted(row.status for row in rows) == ["sent"] * 4
