"""Browser tests: Debian's Chromium, driven headless by Playwright, against a real server.

The server is `uvicorn` in its own process on the session's test database (SQLite or
PostgreSQL), so what the browser sees went through the whole stack: middleware,
cookies, CSRF, templates. Chromium comes from the system (`apt-get install chromium`),
never from Playwright's own download. Each test leaves a screenshot of its last page
under test-artifacts/screenshots/ (CTCP_TEST_ARTIFACTS to change it).
"""

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from ctcp.core.config import Settings
from tests.servers import AppServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CTCP_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The machine has no internet: without these Chromium keeps dialling Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def chromium_path() -> str:
    found = os.environ.get("CTCP_CHROMIUM") or shutil.which("chromium") or ""
    if not found:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[str]:
    """The portal served by uvicorn in a separate process, on this session's database."""
    server = AppServer(settings.database_url, settings, log_name="browser-server")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def screenshot(page: Page, request: pytest.FixtureRequest, step: str) -> Path:
    """Save the page as it looks now, named after the test and the step."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = ARTIFACTS / f"{name}--{step}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
async def new_page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """`await new_page(locale="fr")`: a fresh browser context (own cookies) and a page."""
    contexts = []

    async def open_page(locale: str = "en-GB") -> Page:
        context = await browser.new_context(locale=locale)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            for index, page in enumerate(context.pages):
                await screenshot(page, request, f"end-{index}")
            await context.close()
