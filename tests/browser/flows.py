"""Steps a person takes in the browser, shared by the browser tests."""

from playwright.async_api import Page

from tests.factories import PASSWORD, TOTP_SECRETS, next_otp


async def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form, with the authenticator code when the user has one."""
    await page.goto(f"{base}/portal/sign-in")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(password)
    if email.lower() in TOTP_SECRETS:
        await page.locator("#otp").fill(next_otp(email))
    await page.locator("main form button[type=submit]").click()
    await page.wait_for_load_state()
