"""`notify` enqueues one mail per active holder of a role, inside the caller's transaction."""

import uuid

import pytest
from sqlalchemy import update
from sqlmodel import select

from ctcp.core.db import Database
from ctcp.identity.models import User
from ctcp.notifications import service as notifications
from ctcp.notifications.models import Notification
from ctcp.organizations.models import Organization
from tests.factories import make_org, make_user

ENTITY_FOCAL_POINT = "entity_focal_point"
STATE_FOCAL_POINT = "state_focal_point"


async def deactivate(database: Database, user: User) -> None:
    async with database.transaction() as session:
        await session.exec(update(User).where(User.id == user.id).values(active=False))  # type: ignore[arg-type]


async def rows_for(database: Database, object_id: uuid.UUID) -> list[Notification]:
    async with database.sessionmaker() as session:
        statement = select(Notification).where(Notification.object_id == object_id)
        return list((await session.exec(statement)).all())


async def test_one_row_per_active_focal_point_of_the_given_organizations(
    outbox_database: Database,
) -> None:
    database = outbox_database
    first = await make_org(database, kind="compact_entity")
    second = await make_org(database, kind="compact_entity")
    elsewhere = await make_org(database, kind="compact_entity")
    reached = [
        await make_user(database, org=first, roles=(ENTITY_FOCAL_POINT,)),
        await make_user(database, org=first, roles=(ENTITY_FOCAL_POINT,)),
        await make_user(database, org=second, roles=(ENTITY_FOCAL_POINT,)),
    ]
    inactive = await make_user(database, org=first, roles=(ENTITY_FOCAL_POINT,))
    await deactivate(database, inactive)
    await make_user(database, org=first)  # no role
    await make_user(database, org=second, roles=(STATE_FOCAL_POINT,))  # another role
    await make_user(database, org=elsewhere, roles=(ENTITY_FOCAL_POINT,))
    object_id = uuid.uuid4()

    async with database.transaction() as session:
        count = await notifications.notify(
            session,
            event="request.circulated",
            object_type="assistance_request",
            object_id=object_id,
            role=ENTITY_FOCAL_POINT,
            organization_ids=[first.id, second.id],
            subject="A request for assistance was circulated",
            body="Open it on the platform: http://ctcp.test/requests/1",
        )

    assert count == 3
    rows = await rows_for(database, object_id)
    assert sorted((row.recipient_user_id, row.recipient_email) for row in rows) == sorted(
        (user.id, user.email) for user in reached
    )
    assert len({row.id for row in rows}) == 3
    for row in rows:
        assert row.event == "request.circulated"
        assert row.object_type == "assistance_request"
        assert row.subject == "A request for assistance was circulated"
        assert row.body == "Open it on the platform: http://ctcp.test/requests/1"
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.sent_at is None and row.claimed_until is None
        assert row.next_attempt_at == row.created_at


async def test_organization_kind_reaches_every_active_organization_of_that_kind(
    outbox_database: Database,
) -> None:
    database = outbox_database
    states = [await make_org(database), await make_org(database)]
    closed = await make_org(database)
    entity = await make_org(database, kind="compact_entity")
    reached = [await make_user(database, org=state, roles=(STATE_FOCAL_POINT,)) for state in states]
    await make_user(database, org=closed, roles=(STATE_FOCAL_POINT,))
    await make_user(database, org=entity, roles=(STATE_FOCAL_POINT,))  # not a State
    async with database.transaction() as session:
        await session.exec(
            update(Organization).where(Organization.id == closed.id).values(active=False)  # type: ignore[arg-type]
        )
    object_id = uuid.uuid4()

    async with database.transaction() as session:
        count = await notifications.notify(
            session,
            event="offer.received",
            object_type="offer",
            object_id=object_id,
            role=STATE_FOCAL_POINT,
            organization_kind="member_state",
            subject="An offer was received",
            body="http://ctcp.test/offers/1",
        )

    rows = await rows_for(database, object_id)
    recipients = {row.recipient_user_id for row in rows}
    assert count == len(rows)
    assert {user.id for user in reached} <= recipients
    async with database.sessionmaker() as session:
        kinds = (
            await session.exec(
                select(Organization.kind, Organization.active)
                .join(User, User.organization_id == Organization.id)  # type: ignore[arg-type]
                .where(User.id.in_(recipients))  # type: ignore[attr-defined]
            )
        ).all()
    assert set(kinds) == {("member_state", True)}


async def test_nothing_is_enqueued_when_the_callers_transaction_rolls_back(
    outbox_database: Database,
) -> None:
    database = outbox_database
    entity = await make_org(database, kind="compact_entity")
    await make_user(database, org=entity, roles=(ENTITY_FOCAL_POINT,))
    object_id = uuid.uuid4()

    with pytest.raises(RuntimeError, match="the event failed"):
        async with database.transaction() as session:
            count = await notifications.notify(
                session,
                event="offer.accepted",
                object_type="offer",
                object_id=object_id,
                role=ENTITY_FOCAL_POINT,
                organization_ids=[entity.id],
                subject="Your offer was accepted",
                body="http://ctcp.test/offers/1",
            )
            assert count == 1
            assert len((await session.exec(select(Notification))).all()) == 1  # flushed
            raise RuntimeError("the event failed")

    assert await rows_for(database, object_id) == []


async def test_an_audience_is_required_and_an_empty_one_reaches_nobody(
    outbox_database: Database,
) -> None:
    async with outbox_database.transaction() as session:
        arguments = {
            "event": "offer.declined",
            "object_type": "offer",
            "object_id": uuid.uuid4(),
            "role": ENTITY_FOCAL_POINT,
            "subject": "Your offer was declined",
            "body": "http://ctcp.test/offers/1",
        }
        with pytest.raises(ValueError, match="organization"):
            await notifications.notify(session, **arguments)  # type: ignore[arg-type]
        assert await notifications.notify(session, organization_ids=[], **arguments) == 0  # type: ignore[arg-type]


async def test_subject_is_kept_to_one_line(outbox_database: Database) -> None:
    entity = await make_org(outbox_database, kind="compact_entity")
    await make_user(outbox_database, org=entity, roles=(ENTITY_FOCAL_POINT,))
    object_id = uuid.uuid4()
    async with outbox_database.transaction() as session:
        await notifications.notify(
            session,
            event="offer.not_selected",
            object_type="offer",
            object_id=object_id,
            role=ENTITY_FOCAL_POINT,
            organization_ids=[entity.id],
            subject="Offer\r\nBcc: someone@example.org",
            body="http://ctcp.test/offers/1",
        )
    [row] = await rows_for(outbox_database, object_id)
    assert row.subject == "Offer Bcc: someone@example.org"
