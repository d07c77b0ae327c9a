"""Reminders: a State's focal points hear, through the outbox, of an entry 30 days before
it turns stale and again when it does; once per confirmation each, whatever the number of
passes or instances running them, and nobody else hears of it.

Each test has a database of its own: a pass reminds of every due entry there is.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col, select

from ctcp.app import create_app
from ctcp.contacts import service as contacts
from ctcp.contacts.models import ContactPoint
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.models import User
from ctcp.notifications.models import Notification
from ctcp.organizations.models import Organization
from tests.factories import make_org, make_user, new_client, run_ctcp, sign_in


@dataclass
class World:
    app: FastAPI
    database: Database
    state: Organization
    focal_points: list[User]  # the State's two focal points
    others: list[User]  # another State's focal point, an entity's, an analyst
    analyst: httpx.AsyncClient
    entry: uuid.UUID  # the State's entry
    other_entry: uuid.UUID  # the other State's entry, confirmed now


def body(state: Organization) -> dict[str, Any]:
    return {
        "state": state.code,
        "kind": "extradition_central_authority",
        "authority": "Office of the Attorney General",
        "email": "extradition@ag.example.org",
        "languages": ["en"],
        "audience": "member_states",
    }


@asynccontextmanager
async def app_on(url: str, settings: Settings, **changes: Any) -> AsyncIterator[FastAPI]:
    """An app instance serving the database at `url`, with these settings changed."""
    app = create_app(settings.model_copy(update={"database_url": url, **changes}))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def world(fresh_database_url: str, settings: Settings) -> AsyncIterator[World]:
    database = Database(fresh_database_url)
    async with app_on(fresh_database_url, settings) as app:
        state, other = await make_org(database), await make_org(database)
        focal_points = [
            await make_user(database, org=state, roles=("state_focal_point",)) for _ in range(2)
        ]
        others = [
            await make_user(database, org=other, roles=("state_focal_point",)),
            await make_user(database, kind="compact_entity", roles=("entity_focal_point",)),
            await make_user(database, roles=("cted_analyst",)),
        ]
        async with new_client(app) as analyst:
            await sign_in(analyst, others[2].email)
            ids = []
            for owner in (state, other):
                created = await analyst.post("/api/v1/contact-points", json=body(owner))
                assert created.status_code == 201, created.text
                ids.append(uuid.UUID(created.json()["id"]))
            yield World(app, database, state, focal_points, others, analyst, *ids)
    await database.dispose()


async def confirmed_days_ago(database: Database, entry: uuid.UUID, days: int) -> None:
    """Move an entry's last confirmation back in time, as a year passing would."""
    async with database.transaction() as session:
        await session.exec(
            update(ContactPoint)
            .where(col(ContactPoint.id) == entry)
            .values(confirmed_at=clock.now() - timedelta(days=days))
        )


async def remind(database: Database) -> tuple[int, int]:
    async with database.transaction() as session:
        report = await contacts.send_reminders(session)
    return report.soon, report.stale


async def outbox(database: Database) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    """Every notification: (event, entry, recipient)."""
    async with database.sessionmaker() as session:
        rows = (await session.exec(select(Notification))).all()
    return sorted((row.event, row.object_id, row.recipient_user_id) for row in rows)


def to_focal_points(world: World, event: str) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    return sorted((event, world.entry, user.id) for user in world.focal_points)


async def test_a_fresh_entry_brings_no_reminder(world: World) -> None:
    assert await remind(world.database) == (0, 0)
    assert await outbox(world.database) == []


async def test_thirty_days_before_stale_the_states_focal_points_are_told_once(
    world: World,
) -> None:
    await confirmed_days_ago(world.database, world.entry, 340)

    assert await remind(world.database) == (1, 0)
    soon = to_focal_points(world, "contact.soon")
    assert await outbox(world.database) == soon
    assert await remind(world.database) == (0, 0)
    assert await outbox(world.database) == soon

    async with world.database.sessionmaker() as session:
        [mail] = (
            await session.exec(
                select(Notification).where(
                    col(Notification.recipient_user_id) == world.focal_points[0].id
                )
            )
        ).all()
    assert "needs confirming" in mail.subject
    assert "in 30 days" in mail.body and str(world.entry) in mail.body
    assert mail.recipient_email == world.focal_points[0].email


async def test_when_stale_they_are_told_again_then_never_until_confirmed(world: World) -> None:
    await confirmed_days_ago(world.database, world.entry, 340)
    assert await remind(world.database) == (1, 0)
    await confirmed_days_ago(world.database, world.entry, 366)

    assert await remind(world.database) == (0, 1)
    assert await remind(world.database) == (0, 0)
    assert await outbox(world.database) == sorted(
        to_focal_points(world, "contact.soon") + to_focal_points(world, "contact.stale")
    )
    recipients = {recipient for _, _, recipient in await outbox(world.database)}
    assert not recipients & {user.id for user in world.others}


async def test_an_entry_found_stale_gets_only_the_stale_reminder(world: World) -> None:
    await confirmed_days_ago(world.database, world.entry, 400)
    assert await remind(world.database) == (0, 1)
    assert await outbox(world.database) == to_focal_points(world, "contact.stale")


async def test_confirming_resets_the_reminders_for_the_next_year(world: World) -> None:
    await confirmed_days_ago(world.database, world.entry, 366)
    assert await remind(world.database) == (0, 1)
    async with new_client(world.app) as focal_point:
        await sign_in(focal_point, world.focal_points[0].email)
        confirmed = await focal_point.post(f"/api/v1/contact-points/{world.entry}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    async with world.database.sessionmaker() as session:
        entry = await session.get(ContactPoint, world.entry)
    assert entry is not None
    assert (entry.soon_stale_reminded_at, entry.stale_reminded_at) == (None, None)

    assert await remind(world.database) == (0, 0)
    # A year on from the confirmation, the reminders come again.
    await confirmed_days_ago(world.database, world.entry, 340)
    assert await remind(world.database) == (1, 0)
    assert await outbox(world.database) == sorted(
        to_focal_points(world, "contact.stale") + to_focal_points(world, "contact.soon")
    )


async def test_a_retired_entry_brings_no_reminder(world: World) -> None:
    await confirmed_days_ago(world.database, world.entry, 400)
    retired = await world.analyst.delete(f"/api/v1/contact-points/{world.entry}")
    assert retired.status_code == 204, retired.text
    assert await remind(world.database) == (0, 0)
    assert await outbox(world.database) == []


async def test_two_passes_at_once_send_each_reminder_once(
    world: World, fresh_database_url: str
) -> None:
    """Two instances, each with its own connections, run their passes at the same time."""
    await confirmed_days_ago(world.database, world.entry, 340)
    await confirmed_days_ago(world.database, world.other_entry, 370)
    other_instance = Database(fresh_database_url)
    try:
        reports = await asyncio.gather(remind(world.database), remind(other_instance))
    finally:
        await other_instance.dispose()
    assert sorted(reports) in ([(0, 0), (1, 1)], [(0, 1), (1, 0)])
    other_state_focal_point = world.others[0]
    assert await outbox(world.database) == sorted(
        [
            *to_focal_points(world, "contact.soon"),
            ("contact.stale", world.other_entry, other_state_focal_point.id),
        ]
    )


async def test_remind_command_prints_what_it_sent(world: World, tmp_path: Path) -> None:
    await confirmed_days_ago(world.database, world.entry, 340)
    env = {"CTCP_DATABASE_URL": world.database.url, "CTCP_VAR_DIR": str(tmp_path)}

    code, output = await asyncio.to_thread(run_ctcp, env, "contacts", "remind")
    assert code == 0, output
    assert "reminders sent: 1 entries turning stale within 30 days, 0 entries stale" in output
    code, output = await asyncio.to_thread(run_ctcp, env, "contacts", "remind")
    assert code == 0, output
    assert "reminders sent: 0 entries turning stale within 30 days, 0 entries stale" in output
    assert await outbox(world.database) == to_focal_points(world, "contact.soon")


async def test_the_app_reminds_in_the_background_when_set_to(
    world: World, fresh_database_url: str, settings: Settings
) -> None:
    assert world.app.state.contact_reminders is None  # the tests' setting: 0, off
    await confirmed_days_ago(world.database, world.entry, 340)
    async with app_on(fresh_database_url, settings, contact_reminder_seconds=0.05) as app:
        assert [t.get_name() for t in asyncio.all_tasks()].count("ctcp-contact-reminders") == 1
        for _ in range(250):
            if await outbox(world.database):
                break
            await asyncio.sleep(0.02)
        assert await outbox(world.database) == to_focal_points(world, "contact.soon")
        assert app.state.contact_reminders is not None
    assert "ctcp-contact-reminders" not in [t.get_name() for t in asyncio.all_tasks()]
