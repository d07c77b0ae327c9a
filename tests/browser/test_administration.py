"""An administrator creates a user in the browser; the user must enrol MFA at first sign-in."""

import pyotp
import pytest
from playwright.async_api import expect

from ctcp.core.db import Database
from tests.browser.conftest import screenshot
from tests.browser.flows import sign_in
from tests.factories import make_org, make_user, unique

NEW_PASSWORD = "Quiet-meadow-lantern-4821"


async def test_admin_creates_a_user_who_must_enrol_mfa_at_first_sign_in(
    live_server: str, new_page: object, database: Database, request: pytest.FixtureRequest
) -> None:
    secretariat = await make_org(database, kind="secretariat", name=unique("Secretariat "))
    admin = await make_user(database, org=secretariat, roles=("platform_admin",))
    admin_page = await new_page()  # type: ignore[operator]
    await sign_in(admin_page, live_server, admin.email)
    await admin_page.get_by_role("link", name="Users").first.click()
    await admin_page.goto(f"{live_server}/portal/admin/users/new")
    email = f"{unique('officer-').lower()}@ctcp.example"
    await admin_page.locator("#email").fill(email)
    await admin_page.locator("#name").fill("Amina Consent-Officer")
    await admin_page.locator("#organization_id").select_option(
        label=f"{secretariat.name_en} ({secretariat.code})"
    )
    await admin_page.locator("#password").fill(NEW_PASSWORD)
    await admin_page.get_by_label("Consent officer").check()
    await screenshot(admin_page, request, "new-user-form")
    await admin_page.get_by_role("button", name="Create the user").click()
    await expect(admin_page.locator(".notice")).to_contain_text("The user was created.")
    await expect(admin_page.locator("main")).to_contain_text(email)

    # First sign-in of the new user: straight to enrolment, nothing else until done.
    page = await new_page()  # type: ignore[operator]
    await sign_in(page, live_server, email, NEW_PASSWORD)
    await expect(page).to_have_url(f"{live_server}/portal/mfa")
    await expect(page.locator(".warning")).to_contain_text("requires two-step verification")
    await page.goto(f"{live_server}/portal/reports")
    await expect(page).to_have_url(f"{live_server}/portal/mfa")
    await page.get_by_role("button", name="Set up two-step verification").click()
    await expect(page.locator("figure.qr svg")).to_be_visible()
    await screenshot(page, request, "mfa-qr")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.locator("#otp").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on two-step verification").click()
    await expect(page.locator(".recovery-codes li")).to_have_count(10)
    await page.get_by_role("link", name="Continue to the dashboard").click()
    await expect(page.locator("h1")).to_have_text("Dashboard")
