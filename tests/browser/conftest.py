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
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from ctcp.core.config import Settings

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[str]:
    """The portal served by uvicorn in a separate process, on this session's database."""
    port = _free_port()
    environment = {
        **os.environ,
        "CTCP_ENVIRONMENT": "test",
        "CTCP_DATABASE_URL": settings.database_url,
        "CTCP_SECRET_KEY": settings.secret().decode(),
        "CTCP_VAR_DIR": str(settings.var_dir),
        "CTCP_RATE_LIMIT_PER_CLIENT": "1000000",
        "CTCP_RATE_LIMIT_PER_ADDRESS": "1000000",
    }
    environment.pop("CTCP_SMTP_HOST", None)
    log = (settings.var_dir / f"server-{port}.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "ctcp.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (settings.var_dir / f"server-{port}.log").read_text()
                pytest.fail(f"the server did not start:\n{output[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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
