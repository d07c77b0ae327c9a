"""The French interface, chosen by the browser's language or by the switcher."""

import pytest
from playwright.async_api import expect

from ctcp.core.db import Database
from tests.browser.conftest import screenshot
from tests.browser.flows import sign_in
from tests.factories import make_org, make_user


async def test_french_interface_renders_with_french_labels(
    live_server: str, new_page: object, database: Database, request: pytest.FixtureRequest
) -> None:
    state = await make_org(database, name="Republic of Testland")
    async with database.transaction() as session:
        state.name_fr = "République du Testland"
        session.add(state)
    user = await make_user(database, org=state, roles=("state_focal_point",))
    page = await new_page(locale="fr-FR")  # type: ignore[operator]

    await page.goto(f"{live_server}/portal/sign-in")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.locator("h1")).to_have_text("Connexion")
    await expect(page.locator("label[for=password]")).to_contain_text("Mot de passe")
    await screenshot(page, request, "sign-in-fr")

    await sign_in(page, live_server, user.email)
    await expect(page.locator("h1")).to_have_text("Tableau de bord")
    await expect(page.locator("nav.main-nav")).to_contain_text("Rapports")
    await expect(page.locator("header")).to_contain_text("République du Testland")
    await expect(page.locator("button", has_text="Se déconnecter")).to_be_visible()
    await screenshot(page, request, "dashboard-fr")

    # The switcher wins over the browser's language, and the choice is kept.
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("header")).to_contain_text("Republic of Testland")
    await page.goto(f"{live_server}/portal")
    await expect(page.locator("html")).to_have_attribute("lang", "en")


async def test_wrong_password_then_sign_in_then_sign_out(
    live_server: str, new_page: object, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    page = await new_page()  # type: ignore[operator]
    await page.goto(f"{live_server}/portal")
    await expect(page).to_have_url(f"{live_server}/portal/sign-in?next=/portal")
    await page.locator("#email").fill(user.email)
    await page.locator("#password").fill("not-the-password")
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator(".error-summary")).to_contain_text("not correct")
    await sign_in(page, live_server, user.email)
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator(".notice")).to_contain_text("signed out")
    await page.goto(f"{live_server}/portal")
    await expect(page).to_have_url(f"{live_server}/portal/sign-in?next=/portal")
