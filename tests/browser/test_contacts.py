"""The directory of contact points in the browser: Kenya's focal point confirms an entry
from the dashboard; a Compact entity finds an authority by the language it accepts."""

import uuid
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel import col, select

from ctcp.audit.service import AuditContext
from ctcp.contacts import service
from ctcp.contacts.models import ContactPoint
from ctcp.contacts.schemas import ContactPointContent
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.browser.conftest import screenshot
from tests.browser.flows import sign_in
from tests.factories import audit_events, make_org, make_user, unique


async def kenya(database: Database) -> Organization:
    """Kenya, as the reference data names it (made here if this database has none)."""
    async with database.sessionmaker() as session:
        found = (
            await session.exec(select(Organization).where(col(Organization.code) == "KEN"))
        ).first()
    return found or await make_org(database, code="KEN", name="Kenya")


async def add_entry(
    database: Database, state: Organization, *, confirmed_days_ago: int = 0, **fields: object
) -> uuid.UUID:
    body = ContactPointContent.model_validate(
        {"email": "desk@authority.example.org", "languages": ["en"], **fields}
    )
    async with database.transaction() as session:
        entry = await service.insert_contact_point(
            session,
            service.Editor(AuditContext(), None, None),
            state,
            body,
            confirmed_at=clock.now() - timedelta(days=confirmed_days_ago),
        )
    return entry.id


async def test_kenya_confirms_an_entry_and_an_entity_finds_one_by_language(
    live_server: str,
    new_page: object,
    database: Database,
    request: pytest.FixtureRequest,
) -> None:
    state = await kenya(database)
    stale_authority = unique("Counter-terrorism coordination office ")
    swahili_authority = unique("Financial Reporting Centre ")
    stale_id = await add_entry(
        database,
        state,
        kind="ct_coordinator",
        authority=stale_authority,
        audience="member_states",
        confirmed_days_ago=400,
    )
    await add_entry(
        database,
        state,
        kind="financial_intelligence_unit",
        authority=swahili_authority,
        languages=["sw", "en"],
        phone="+254 20 2222222",
        audience="compact",
    )
    focal_point = await make_user(database, org=state, roles=("state_focal_point",))

    page: Page = await new_page()  # type: ignore[operator]
    await sign_in(page, live_server, focal_point.email)
    panel = page.locator(
        "section.card", has=page.get_by_role("heading", name="Your entries to confirm")
    )
    await expect(panel).to_contain_text(stale_authority)
    await expect(panel).not_to_contain_text(swahili_authority)  # confirmed today
    await screenshot(page, request, "dashboard-to-confirm")
    item = panel.locator("li", has_text=stale_authority)
    await item.get_by_role("button", name="Confirm, nothing changed").click()
    await expect(page.locator(".notice")).to_contain_text("Confirmed")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("main")).not_to_contain_text(stale_authority)
    await screenshot(page, request, "dashboard-confirmed")
    async with database.sessionmaker() as session:
        entry = await session.get(ContactPoint, stale_id)
        assert entry is not None and entry.confirmed_at > clock.now() - timedelta(minutes=5)
    confirmations = await audit_events(database, action="contact.confirm", object_id=str(stale_id))
    assert [event.actor_user_id for event in confirmations] == [focal_point.id]

    entity = await make_org(database, kind="compact_entity")
    reader = await make_user(database, org=entity, roles=("entity_focal_point",))
    entity_page: Page = await new_page()  # type: ignore[operator]
    await sign_in(entity_page, live_server, reader.email)
    await entity_page.get_by_role("link", name="Contact points").click()
    await expect(entity_page.locator("h1")).to_have_text("Contact points")
    await entity_page.locator("#state").select_option("KEN")
    await entity_page.locator("#language").select_option("sw")
    await entity_page.get_by_role("button", name="Filter").click()
    card = entity_page.locator("section.state-card")
    await expect(entity_page.locator("main")).to_contain_text(swahili_authority)
    await expect(entity_page.locator("main")).not_to_contain_text(stale_authority)
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("Financial-intelligence unit")
    await screenshot(entity_page, request, "directory-by-language")
    await entity_page.get_by_role("link", name=swahili_authority).click()
    facts = entity_page.locator("dl.facts")
    await expect(facts).to_contain_text("+254 20 2222222")
    await expect(facts).to_contain_text("Swahili")
    await expect(entity_page.locator("main")).not_to_contain_text("History")
    await screenshot(entity_page, request, "entry")
