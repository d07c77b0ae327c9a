"""The coordination matrix in the browser: a CTED analyst opens it from the menu, finds a
State's gap and overlap written in words, narrows it to one thematic area, and the charts
(SVG images under their own CSP) are drawn."""

import re
from datetime import date

import pytest
from playwright.async_api import Locator, Page, expect

from ctcp.assistance.models import Need
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity
from tests.browser.conftest import screenshot
from tests.browser.flows import sign_in
from tests.factories import make_org, make_user, unique


async def _need(database: Database, state: Organization, area: str) -> None:
    async with database.transaction() as session:
        session.add(
            Need(
                state_id=state.id,
                area=area,
                description=f"Open need in {area}.",
                priority="high",
                source="state_request",
            )
        )


async def _activity(
    database: Database, state: Organization, lead: Organization, title: str, starts: date
) -> None:
    async with database.transaction() as session:
        session.add(
            Activity(
                state_id=state.id,
                area="border_management",
                kind="training",
                title=title,
                description="Training of border guards.",
                starts_on=starts,
                ends_on=date(starts.year, 12, 31),
                lead_id=lead.id,
            )
        )


async def _drawn(image: Locator) -> None:
    """The image loaded and has a size: the browser drew the chart."""
    await image.scroll_into_view_if_needed()
    await expect(image).to_have_js_property("complete", True)
    assert await image.evaluate("image => image.naturalWidth") > 0


async def test_cted_finds_a_gap_in_words_and_filters_the_matrix_by_area(
    live_server: str,
    new_page: object,
    database: Database,
    request: pytest.FixtureRequest,
) -> None:
    name = unique("Gapland ")
    state = await make_org(database, name=name)
    first = await make_org(database, kind="compact_entity", name=unique("Border agency "))
    second = await make_org(database, kind="compact_entity", name=unique("Travel office "))
    # A gap in counter-financing; two entities at the borders in the same months.
    await _need(database, state, "counter_financing")
    await _need(database, state, "border_management")
    await _activity(database, state, first, "Border guards training", date(2027, 2, 1))
    await _activity(database, state, second, "Passenger data systems", date(2027, 5, 1))
    analyst = await make_user(database, roles=("cted_analyst",))

    page: Page = await new_page()  # type: ignore[operator]
    await sign_in(page, live_server, analyst.email)
    await (
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Coordination").click()
    )
    await expect(page.locator("h1")).to_have_text("Coordination")
    row = page.locator("table.matrix tbody tr", has=page.get_by_role("rowheader", name=name))
    await expect(row).to_have_count(1)
    gap = row.locator("td.is-gap")
    await expect(gap).to_have_count(1)
    await expect(gap).to_contain_text("Gap")
    await expect(gap).to_contain_text("Open needs: 1")
    await expect(gap).to_contain_text("No activity")
    overlap = row.locator("td.is-overlap")
    await expect(overlap).to_contain_text("Overlap")
    await expect(overlap).to_contain_text(first.code)
    await expect(overlap).to_contain_text(second.code)
    # The charts are images the browser drew (an SVG that failed would have no width).
    charts = page.locator("figure.chart img")
    await expect(charts).to_have_count(2)  # by area, by lead entity
    for index in range(2):
        await _drawn(charts.nth(index))
    await row.scroll_into_view_if_needed()
    await screenshot(page, request, "matrix")

    await page.locator("#area").select_option("counter_financing")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r".*/portal/coordination\?.*area=counter_financing"))
    headers = page.locator("table.matrix thead th")
    await expect(headers).to_have_text(["State", "Countering the financing of terrorism"])
    row = page.locator("table.matrix tbody tr", has=page.get_by_role("rowheader", name=name))
    await expect(row.locator("td")).to_have_count(1)
    await expect(row).to_contain_text("Gap")
    await expect(row).not_to_contain_text("Overlap")
    charts = page.locator("figure.chart img")
    for index in range(await charts.count()):
        await _drawn(charts.nth(index))
    await screenshot(page, request, "matrix-by-area")

    # The State's timeline, from its row.
    await page.get_by_role("link", name=name).first.click()
    await expect(page.locator("h1")).to_have_text(f"Activities in {name}")
    await expect(page.locator("table")).to_contain_text("Passenger data systems")
    await _drawn(page.locator("figure.chart img"))
    await screenshot(page, request, "timeline")
