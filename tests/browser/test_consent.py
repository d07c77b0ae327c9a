"""Consent in the browser: a State withdraws it; a consent officer records partial consent."""

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect

from ctcp.core.db import Database
from tests.browser.conftest import screenshot
from tests.browser.flows import sign_in
from tests.factories import make_org, make_publication, make_user, new_client, unique
from tests.factories import sign_in as api_sign_in


async def _entity_reader(database: Database) -> str:
    entity = await make_org(database, kind="compact_entity")
    return (await make_user(database, org=entity, roles=("entity_focal_point",))).email


async def test_state_withdraws_consent_then_the_entity_no_longer_finds_the_publication(
    app: FastAPI,
    live_server: str,
    new_page: object,
    database: Database,
    request: pytest.FixtureRequest,
) -> None:
    title = unique("Visit to the port of ")
    secret_finding = unique("Finding ")
    published = await make_publication(app, database, title=title, body=secret_finding)
    focal_point = await make_user(database, org=published.state, roles=("state_focal_point",))
    entity_page: Page = await new_page()  # type: ignore[operator]
    await sign_in(entity_page, live_server, await _entity_reader(database))
    listing = f"{live_server}/portal/publications?state={published.state.code}"
    await entity_page.goto(listing)
    await entity_page.get_by_role("link", name=title).click()
    await expect(entity_page.locator("main")).to_contain_text(secret_finding)
    await screenshot(entity_page, request, "entity-reads-publication")

    state_page: Page = await new_page()  # type: ignore[operator]
    await sign_in(state_page, live_server, focal_point.email)
    await state_page.goto(f"{live_server}/portal/reports/{published.report_id}/consent")
    await state_page.get_by_role("link", name="Withdraw consent").click()
    await expect(state_page.locator(".warning")).to_contain_text("Are you sure?")
    await state_page.get_by_label("Reason").fill("The Government asks to stop sharing.")
    await screenshot(state_page, request, "withdraw-confirmation")
    await state_page.get_by_role("button", name="Confirm: withdraw consent").click()
    await expect(state_page.locator(".notice")).to_be_visible()
    await expect(state_page.locator("table")).to_contain_text(
        "The Government asks to stop sharing."
    )
    await screenshot(state_page, request, "consent-withdrawn")

    await entity_page.goto(listing)
    await expect(entity_page.locator("main")).to_contain_text(
        "No publications match these filters."
    )
    await expect(entity_page.get_by_role("link", name=title)).to_have_count(0)
    await entity_page.goto(f"{live_server}/portal/publications/{published.publication_id}")
    await expect(entity_page.locator("h1")).to_have_text("Page not found")
    await expect(entity_page.locator("main")).not_to_contain_text(secret_finding)
    await entity_page.goto(f"{live_server}/portal/search?q={secret_finding}")
    await expect(entity_page.locator("main")).not_to_contain_text(title)


async def test_consent_officer_records_partial_consent_and_the_preview_matches_the_publication(
    app: FastAPI,
    live_server: str,
    new_page: object,
    database: Database,
    request: pytest.FixtureRequest,
) -> None:
    state = await make_org(database)
    title = unique("Focused visit ")
    private = unique("Private finding ")
    async with new_client(app) as analyst:
        await api_sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)
        created = await analyst.post(
            "/api/v1/reports",
            json={
                "state": state.code,
                "title": title,
                "kind": "focused",
                "visit_start": "2026-05-04",
                "visit_end": "2026-05-08",
                "sections": [
                    {"area": "legislation", "title": "Criminal code", "body": "Law text."},
                    {"area": "border_management", "title": "Border posts", "body": private},
                    {"area": "human_rights", "title": "Safeguards", "body": "Oversight exists."},
                ],
            },
        )
        assert created.status_code == 201, created.text
        report_id = created.json()["id"]
        assert (await analyst.post(f"/api/v1/reports/{report_id}/adopt")).status_code == 200
    officer = await make_user(database, roles=("consent_officer",))
    page: Page = await new_page()  # type: ignore[operator]
    await sign_in(page, live_server, officer.email)
    await page.goto(f"{live_server}/portal/reports/{report_id}/consent")
    await page.locator("#scope").select_option("partial")
    await page.get_by_label("Criminal code").check()
    await page.get_by_label("Safeguards").check()
    await page.locator("#audience").select_option("compact")
    await page.locator("#reference").fill("NV/2026/118")
    await page.locator("#expires_on").fill("2028-12-31")
    await screenshot(page, request, "decision-form")
    await page.get_by_role("button", name="Preview the publication").click()
    preview = page.locator("article.published-section")
    await expect(preview).to_have_count(2)
    previewed = [
        (
            await section.locator("h3").inner_text(),
            await section.locator(".section-body").inner_text(),
        )
        for section in await preview.all()
    ]
    assert previewed == [("Criminal code", "Law text."), ("Safeguards", "Oversight exists.")]
    await expect(page.locator("main")).not_to_contain_text(private)
    await screenshot(page, request, "preview")
    await page.get_by_role("button", name="Confirm and record").click()
    await expect(page.locator(".notice")).to_be_visible()
    await expect(page.locator("table")).to_contain_text("NV/2026/118")

    entity_page: Page = await new_page()  # type: ignore[operator]
    await sign_in(entity_page, live_server, await _entity_reader(database))
    await entity_page.goto(f"{live_server}/portal/publications?state={state.code}")
    await entity_page.get_by_role("link", name=title).click()
    sections = entity_page.locator("main section.card")
    published = [
        (
            await section.locator("h2").inner_text(),
            await section.locator(".section-body").inner_text(),
        )
        for section in await sections.all()
    ]
    assert published == previewed
    await expect(entity_page.locator("main")).not_to_contain_text(private)
    await screenshot(entity_page, request, "publication")
