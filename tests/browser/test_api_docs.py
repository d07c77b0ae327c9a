"""/docs in a real browser: Swagger UI renders from the app's own files, breaking no policy."""

import pytest
from playwright.async_api import ConsoleMessage, Request, expect

from tests.browser.conftest import screenshot

# Playwright's init scripts run outside the page's CSP, so this listener sees every refusal.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


async def test_docs_lists_the_operations_without_errors(
    live_server: str, new_page: object, request: pytest.FixtureRequest
) -> None:
    page = await new_page()  # type: ignore[operator]
    errors: list[str] = []
    foreign: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_request(sent: Request) -> None:
        if not sent.url.startswith(f"{live_server}/") and not sent.url.startswith("data:"):
            foreign.append(sent.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", on_request)
    await page.add_init_script(RECORD_VIOLATIONS)

    await page.goto(f"{live_server}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("CTCP")
    await expect(page.get_by_text("List visit reports")).to_be_visible()
    await expect(page.locator(".opblock").first).to_be_visible()
    await expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    # Opening an operation draws its parameters and media-type selects (data: image icons).
    await page.get_by_text("List visit reports").click()
    await expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await screenshot(page, request, "docs")

    assert await page.evaluate("window.cspViolations") == []
    assert errors == []
    assert foreign == []
