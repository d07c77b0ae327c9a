"""Portal pages of joint planning: every page for every role, what each reader sees of
which State (an entity: no row of a State that does not share), gaps and overlaps said in
words, the charts (SVG with their own CSP, no script), the activity form (what was typed
kept, errors next to their fields), status moves and outputs, the dashboard's slices, and
French."""

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity
from ctcp.planning.pages import CHART_CSP
from tests.assistance.conftest import Assist, build_world
from tests.factories import audit_events, make_org, new_client
from tests.planning.conftest import create_activity
from tests.web.conftest import Reader, reader

ROLES = (
    "anonymous",
    "state",
    "other_state",
    "entity",
    "other_entity",
    "analyst",
    "officer",
    "admin",
    "auditor",
)
READERS = ("state", "other_state", "entity", "other_entity", "analyst", "officer")
WRITERS = ("entity", "other_entity", "analyst")
HIDDEN_TITLE = "Equipment for the coast guard, not shared"
PAGE_CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


@dataclass
class Scene:
    """The assistance world (a sharing State, one that does not share, two entities,
    CTED), a third sharing State with a gap, and the activities of each."""

    world: Assist
    third: Organization
    activities: dict[str, str] = field(default_factory=dict)
    forms: dict[str, Reader] = field(default_factory=dict)

    @property
    def app(self) -> FastAPI:
        return self.world.app

    @property
    def database(self) -> Database:
        return self.world.database

    def __getitem__(self, who: str) -> Any:
        return self.world[who]


@asynccontextmanager
async def _scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    world = await build_world(app, database)
    scene = Scene(world, await make_org(database, name="Third State for tests"))
    try:
        await world.share_needs()
        await world.share_needs(scene.third)
        # The sharing State: a gap in counter-financing, an overlap at its borders.
        await world.need(area="counter_financing")
        await world.need(area="border_management")
        mine = await create_activity(world, "entity", title="Border guards training")
        theirs = await create_activity(
            world,
            "other_entity",
            title="Passenger data systems",
            starts_on="2027-03-01",
            ends_on="2027-09-30",
        )
        # The third State: open border needs and no one at work (a gap in the entity's area).
        await world.need(scene.third, area="border_management")
        # The State that does not share: a need and another entity's activity.
        await world.need(world.other_state, area="border_management")
        hidden = await world["other_entity"].post(
            "/api/v1/activities",
            json={
                "state": world.other_state.code,
                "area": "border_management",
                "title": HIDDEN_TITLE,
                "description": "Patrol boats.",
                "starts_on": "2027-01-01",
            },
        )
        assert hidden.status_code == 201, hidden.text
        scene.activities |= {
            "mine": mine["id"],
            "theirs": theirs["id"],
            "hidden": hidden.json()["id"],
        }
        for name, role, org in (
            ("entity", "entity_focal_point", world.entity),
            ("analyst", "cted_analyst", None),
        ):
            scene.forms[name] = await reader(app, database, roles=(role,), org=org)
        yield scene
    finally:
        for person in scene.forms.values():
            await person.client.aclose()
        for client in world.clients.values():
            await client.aclose()


@pytest.fixture(scope="module")
async def shared_scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """One scene for the tests that read, are refused or send forms that are refused."""
    async with _scene(app, database) as built:
        yield built


@pytest.fixture
async def scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """A scene for one test, which changes it."""
    async with _scene(app, database) as built:
        yield built


def _expect(ok: int, allowed: tuple[str, ...], **special: int) -> dict[str, int]:
    """`ok` for the allowed roles, 403 for the others, 303 (sign in) for anonymous."""
    statuses = {role: (ok if role in allowed else 403) for role in ROLES[1:]}
    statuses["anonymous"] = 303
    return statuses | special


def _get_rows(scene: Scene) -> list[tuple[str, dict[str, int]]]:
    mine, hidden = scene.activities["mine"], scene.activities["hidden"]
    state, other = scene.world.state.code, scene.world.other_state.code
    filters = "area=border_management&year=2027&region=african&by=area&show=gaps"
    return [
        ("/portal/activities", _expect(200, READERS)),
        (
            f"/portal/activities?state={state}&area=border_management&status=planned&year=2027"
            "&programme=countering_terrorist_travel",
            _expect(200, READERS),
        ),
        ("/portal/activities?year=20x7", _expect(422, READERS)),
        (f"/portal/activities/export?format=csv&state={state}", _expect(200, READERS)),
        ("/portal/activities/export?format=hxl", _expect(200, READERS)),
        ("/portal/activities/export?format=iati", _expect(200, READERS)),
        # As the API: the State its own, an entity what it leads and what a sharing
        # State's activities are; 404 outside.
        (f"/portal/activities/{mine}", _expect(200, READERS, other_state=404)),
        (f"/portal/activities/{hidden}", _expect(200, READERS, state=404, entity=404)),
        ("/portal/activities/new", _expect(200, WRITERS)),
        (f"/portal/activities/new?state={state}", _expect(200, WRITERS)),
        (f"/portal/activities/{mine}/edit", _expect(200, WRITERS, other_entity=404)),
        ("/portal/coordination", _expect(200, READERS)),
        (f"/portal/coordination?{filters}", _expect(200, READERS)),
        (
            "/portal/coordination?by=programme&programme=fusion_cells&show=overlaps",
            _expect(200, READERS),
        ),
        ("/portal/coordination?programme=Fusion+cells", _expect(422, READERS)),
        ("/portal/coordination/charts/columns.svg", _expect(200, READERS)),
        (f"/portal/coordination/charts/columns.svg?{filters}", _expect(200, READERS)),
        ("/portal/coordination/charts/entities.svg", _expect(200, READERS)),
        (f"/portal/coordination/states/{state}", _expect(200, READERS)),
        (f"/portal/coordination/states/{other}?year=2027", _expect(200, READERS)),
        (f"/portal/coordination/states/{state}/timeline.svg", _expect(200, READERS)),
    ]


def _post_rows(scene: Scene) -> list[tuple[str, dict[str, str], dict[str, int]]]:
    """Posts that cannot be saved: 422 for the writers, 404 outside their reach."""
    mine = scene.activities["mine"]
    return [
        ("/portal/activities/new", {"state": scene.world.state.code}, _expect(422, WRITERS)),
        (
            f"/portal/activities/{mine}/edit",
            {"title": "", "version": "1"},
            _expect(422, WRITERS, other_entity=404),
        ),
        (
            f"/portal/activities/{mine}/status",
            {"status": "dormant", "version": "1"},
            _expect(422, WRITERS),
        ),
    ]


async def _as(scene: Scene, role: str, method: str, path: str, data: dict[str, str]) -> Any:
    if role == "anonymous":
        async with new_client(scene.app) as anonymous:
            if method == "GET":
                return await anonymous.get(path)
            return await anonymous.post(path, data=data)
    client = scene[role]
    return await (client.get(path) if method == "GET" else client.post(path, data=data))


async def test_every_page_for_every_role(shared_scene: Scene) -> None:
    wrong = []
    for path, expected in _get_rows(shared_scene):
        for role in ROLES:
            response = await _as(shared_scene, role, "GET", path, {})
            if response.status_code != expected[role]:
                wrong.append(f"GET {path} as {role}: {response.status_code} != {expected[role]}")
            elif role == "anonymous":
                assert response.headers["location"].startswith("/portal/sign-in?next=")
            elif response.status_code in (403, 404):
                assert response.headers["content-type"].startswith("text/html")
    for path, data, expected in _post_rows(shared_scene):
        for role in ROLES:
            response = await _as(shared_scene, role, "POST", path, data)
            if response.status_code != expected[role]:
                wrong.append(f"POST {path} as {role}: {response.status_code} != {expected[role]}")
    assert wrong == []
    # None of those refusals changed the activity.
    async with shared_scene.database.sessionmaker() as session:
        found = await session.get(Activity, uuid.UUID(shared_scene.activities["mine"]))
        assert found is not None and found.version == 1 and found.title == "Border guards training"


async def test_pages_have_one_h1_no_script_and_the_portal_csp(shared_scene: Scene) -> None:
    for path, expected in _get_rows(shared_scene):
        if "/export" in path or path.split("?")[0].endswith(".svg"):
            continue
        for role in READERS:
            if expected[role] != 200:
                continue
            page = await shared_scene[role].get(path)
            assert page.text.count("<h1") == 1, (path, role)
            assert "<script" not in page.text and "style=" not in page.text, (path, role)
            assert page.headers["content-security-policy"] == PAGE_CSP, (path, role)


# --- what each reader sees ------------------------------------------------------------


def _row_of(page: str, code: str) -> str | None:
    """The matrix row of a State (its cells), or None if the page has no such row."""
    found = re.search(
        rf'<tr>\s*<th scope="row"><a href="/portal/coordination/states/{code}">.*?</tr>',
        page,
        re.S,
    )
    return found.group(0) if found else None


def _cell(row: str, index: int) -> str:
    cells = re.findall(r'<td class="cell[^"]*">.*?</td>', row, re.S)
    return cells[index]


AREAS = [
    "legislation",
    "counter_financing",
    "law_enforcement",
    "border_management",
    "international_cooperation",
    "countering_violent_extremism",
    "human_rights",
    "critical_infrastructure",
]


async def test_cted_sees_gaps_and_overlaps_written_in_words(shared_scene: Scene) -> None:
    world = shared_scene.world
    page = (await world["analyst"].get("/portal/coordination")).text
    row = _row_of(page, world.state.code)
    assert row is not None
    gap = _cell(row, AREAS.index("counter_financing"))
    assert "is-gap" in gap and '<strong class="flag flag-gap">Gap</strong>' in gap
    assert "Open needs: 1" in gap and "No activity" in gap
    overlap = _cell(row, AREAS.index("border_management"))
    assert '<strong class="flag flag-overlap">Overlap</strong>' in overlap
    assert "Gap" not in overlap and "Activities: 2" in overlap and "Planned 2" in overlap
    assert world.entity.code in overlap and world.other_entity.code in overlap
    assert _cell(row, AREAS.index("legislation")).count("Nothing recorded") == 1
    # CTED sees every State, the one that does not share included.
    assert _row_of(page, world.other_state.code) is not None
    assert _row_of(page, shared_scene.third.code) is not None
    # Filtered by area: one column; only the States with an overlap.
    narrowed = (
        await world["analyst"].get("/portal/coordination?area=border_management&show=overlaps")
    ).text
    row = _row_of(narrowed, world.state.code)
    assert row is not None and len(re.findall(r'<td class="cell', row)) == 1
    assert _row_of(narrowed, shared_scene.third.code) is None
    assert '<option value="border_management" selected>' in narrowed
    # The State's tile on the map carries its figures in words for screen readers.
    assert re.search(
        rf'href="/portal/coordination/states/{world.state.code}" aria-label="[^"]*'
        r"2 open needs, 2 activities planned or ongoing",
        page,
    )


async def test_an_entity_sees_no_row_of_a_state_that_does_not_share(
    shared_scene: Scene,
) -> None:
    world = shared_scene.world
    other = world.other_state.code
    for who in ("entity", "other_entity"):
        page = (await world[who].get("/portal/coordination")).text
        assert _row_of(page, world.state.code) is not None, who
        assert _row_of(page, other) is None, who
        assert f"/portal/coordination/states/{other}" not in page, who
    # The entity that leads the hidden activity finds it in its list, never in the matrix.
    listed = await world["other_entity"].get(f"/portal/activities?state={other}")
    assert HIDDEN_TITLE in listed.text
    # ... nor on that State's timeline, a coordination view like the matrix.
    for path in (
        f"/portal/coordination/states/{other}",
        f"/portal/coordination/states/{other}/timeline.svg",
    ):
        answer = await world["other_entity"].get(path)
        assert answer.status_code == 200 and HIDDEN_TITLE not in answer.text, path
    for path in (
        f"/portal/activities?state={other}",
        f"/portal/coordination/states/{other}",
        f"/portal/coordination/states/{other}/timeline.svg",
        "/portal/activities/export?format=csv",
    ):
        answer = await world["entity"].get(path)
        assert answer.status_code == 200 and HIDDEN_TITLE not in answer.text, path
    # The State sees its own row only.
    own = (await world["state"].get("/portal/coordination")).text
    assert _row_of(own, world.state.code) is not None
    assert _row_of(own, shared_scene.third.code) is None


async def test_charts_are_svg_images_with_their_own_csp(shared_scene: Scene) -> None:
    world = shared_scene.world
    page = (await world["analyst"].get("/portal/coordination?area=border_management")).text
    images = [html.unescape(src) for src in re.findall(r'<img src="([^"]+)" alt="[^"]+"', page)]
    assert len(images) == 2
    assert all("area=border_management" in image for image in images)
    timeline_page = (
        await world["analyst"].get(f"/portal/coordination/states/{world.state.code}")
    ).text
    images += [html.unescape(src) for src in re.findall(r'<img src="([^"]+)"', timeline_page)]
    assert len(images) == 3
    for image in images:
        chart = await world["analyst"].get(image)
        assert chart.status_code == 200, image
        assert chart.headers["content-type"] == "image/svg+xml", image
        assert chart.headers["content-security-policy"] == CHART_CSP, image
        assert chart.text.startswith("<svg") and "<?xml" not in chart.text, image
        assert "<script" not in chart.text.lower() and "javascript" not in chart.text.lower()
    columns = (await world["analyst"].get(images[0])).text
    assert "Open needs and activities at work, by thematic area" in columns
    assert "Border management" in columns
    timeline = (await world["analyst"].get(images[2])).text
    assert "Border guards training · Planned" in timeline
    assert "Passenger data systems · Planned" in timeline
    # Each chart's figures are on the page as a table.
    assert "Totals of each column of the matrix" in page
    assert "Per lead entity: activities by status" in page
    assert "The activities you may read, by start date" in timeline_page


# --- the activity form ----------------------------------------------------------------


def _form(state: str, **changes: str) -> dict[str, Any]:
    return {
        "state": state,
        "title": "Workshop on terrorist financing",
        "area": "counter_financing",
        "programme": "",
        "kind": "training",
        "description": "Two days with the financial-intelligence unit.",
        "status": "planned",
        "starts_on": "2027-04-01",
        "ends_on": "2027-04-02",
        "budget": "",
        "currency": "",
    } | changes


async def _titled(database: Database, title: str) -> list[Activity]:
    async with database.sessionmaker() as session:
        found = await session.exec(select(Activity).where(col(Activity.title) == title))
        return list(found.all())


async def test_the_form_keeps_what_was_typed_and_shows_errors(shared_scene: Scene) -> None:
    world = shared_scene.world
    title = "Kept on the form " + uuid.uuid4().hex[:6]
    answer = await shared_scene.forms["entity"].post(
        "/portal/activities/new",
        _form(
            world.state.code,
            title=title,
            starts_on="2027-05-01",
            ends_on="2027-04-01",
            budget="1200.50",
            currency="XYZ",
            partners=world.other_entity.code,
            **{"outputs-0-name": "Participants", "outputs-0-value": "many"},
        ),
    )
    assert answer.status_code == 422
    page = answer.text
    assert "The form could not be saved" in page
    assert f'value="{title}"' in page and 'value="1200.50"' in page and 'value="XYZ"' in page
    assert "Two days with the financial-intelligence unit." in page
    assert '<option value="counter_financing" selected>' in page
    assert f'value="{world.other_entity.code}" checked' in page
    assert 'value="Participants"' in page and 'value="many"' in page
    for field_id, message in (
        ("currency", "Enter an ISO 4217 currency code, such as USD or EUR."),
        ("outputs-0-value", "Enter a valid number."),
    ):
        assert f'id="{field_id}-error"' in page, field_id
        assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"', page), field_id
        assert message in page, field_id
    assert await _titled(shared_scene.database, title) == []
    # The dates' order is the schema's rule across fields: said at the end date.
    dates = await shared_scene.forms["entity"].post(
        "/portal/activities/new",
        _form(world.state.code, title=title, starts_on="2027-05-01", ends_on="2027-04-01"),
    )
    assert dates.status_code == 422
    assert 'id="ends_on-error"' in dates.text
    assert "The end date is before the start date." in dates.text
    # A need of another State is the service's refusal: on the form too, and audited.
    need = await world.need(shared_scene.third, area="counter_financing")
    smuggled = await shared_scene.forms["entity"].post(
        "/portal/activities/new", _form(world.state.code, title=title, need_ids=need["id"])
    )
    assert smuggled.status_code == 422
    assert "Choose needs of this State from the list." in smuggled.text
    assert await _titled(shared_scene.database, title) == []
    refused = await audit_events(shared_scene.database, action="activity.write", outcome="denied")
    assert any(event.actor_user_id == shared_scene.forms["entity"].user.id for event in refused)


async def test_an_entity_records_moves_and_completes_an_activity(scene: Scene) -> None:
    world = scene.world
    person = scene.forms["entity"]
    form = await person.get(f"/portal/activities/new?state={world.state.code}")
    assert form.status_code == 200
    need = re.search(r'name="need_ids" type="checkbox" value="([^"]+)"', form.text)
    assert need, "the form lists the State's open needs"
    title = "Workshop " + uuid.uuid4().hex[:6]
    created = await person.post(
        "/portal/activities/new",
        _form(
            world.state.code,
            title=title,
            budget="15000",
            currency="usd",
            partners=world.other_entity.code,
            need_ids=need.group(1),
        ),
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    [stored] = await _titled(scene.database, title)
    assert location == f"/portal/activities/{stored.id}"
    assert stored.lead_id == world.entity.id and stored.currency == "USD"
    page = (await person.get(location)).text
    assert "The activity was recorded." in page
    assert "US$15,000.00" in page or "$15,000.00" in page
    assert "Mark as Ongoing" in page and "Mark as Cancelled" in page
    # Forward: ongoing, then completed; then its outputs.
    for status in ("ongoing", "completed"):
        version = re.search(r'name="version" value="(\d+)"', (await person.get(location)).text)
        assert version
        moved = await person.post(
            f"{location}/status", {"status": status, "version": version.group(1)}
        )
        assert moved.status_code == 303
    page = (await person.get(location)).text
    assert "The activity is now Completed." in page and "No outputs recorded yet." in page
    assert "Mark as" not in page  # a completed activity is closed
    edit = (await person.get(f"{location}/edit")).text
    values = dict(re.findall(r'name="([a-z_]+)" type="text" value="([^"]*)"', edit))
    version = re.search(r'name="version" value="(\d+)"', edit)
    assert version
    answer = await person.post(
        f"{location}/edit",
        _form(
            world.state.code,
            title=title,
            status="completed",
            budget=values["budget"],
            currency=values["currency"],
            version=version.group(1),
            partners=world.other_entity.code,
            need_ids=need.group(1),
            **{
                "outputs-0-name": "Participants trained",
                "outputs-0-value": "40",
                "outputs-1-name": "Texts adopted",
                "outputs-1-value": "2",
                "outputs-1-unit": "laws",
            },
        ),
    )
    assert answer.status_code == 303, answer.text
    page = (await person.get(location)).text
    assert "Participants trained" in page and "Texts adopted" in page and "laws" in page
    [stored] = await _titled(scene.database, title)
    assert stored.status == "completed" and len(stored.outputs) == 2
    assert stored.outputs[0] == {"name": "Participants trained", "value": 40.0}
    updates = await audit_events(scene.database, action="activity.update", object_id=str(stored.id))
    assert [event.outcome for event in updates] == ["allowed"] * 3
    # A stale edit: nothing saved, the form back with a message (409).
    stale = await person.post(
        f"{location}/edit", _form(world.state.code, title="Stale", status="completed", version="1")
    )
    assert stale.status_code == 409
    assert "Someone changed this activity after you opened it" in stale.text
    assert 'value="Stale"' in stale.text
    assert await _titled(scene.database, "Stale") == []


async def test_an_entity_cannot_write_another_entitys_activity(scene: Scene) -> None:
    world = scene.world
    theirs = scene.activities["theirs"]
    person = scene.forms["entity"]
    page = (await person.get(f"/portal/activities/{theirs}")).text
    assert "Passenger data systems" in page and "/edit" not in page and "Mark as" not in page
    assert (await person.get(f"/portal/activities/{theirs}/edit")).status_code == 404
    edited = await person.post(
        f"/portal/activities/{theirs}/edit", _form(world.state.code, title="Taken", version="1")
    )
    assert edited.status_code == 404
    moved = await person.post(
        f"/portal/activities/{theirs}/status", {"status": "cancelled", "version": "1"}
    )
    assert moved.status_code == 404
    async with scene.database.sessionmaker() as session:
        found = await session.get(Activity, uuid.UUID(theirs))
        assert found is not None and found.status == "planned" and found.version == 1


async def test_cted_chooses_the_lead(scene: Scene) -> None:
    world = scene.world
    person = scene.forms["analyst"]
    title = "Assessment " + uuid.uuid4().hex[:6]
    missing = await person.post("/portal/activities/new", _form(world.state.code, title=title))
    assert missing.status_code == 422 and 'id="lead-error"' in missing.text
    created = await person.post(
        "/portal/activities/new",
        _form(world.state.code, title=title, lead=world.other_entity.code, kind="assessment"),
    )
    assert created.status_code == 303
    [stored] = await _titled(scene.database, title)
    assert stored.lead_id == world.other_entity.id and stored.kind == "assessment"


# --- the dashboard --------------------------------------------------------------------


async def test_each_dashboard_shows_its_slice_of_the_matrix(shared_scene: Scene) -> None:
    world = shared_scene.world
    entity = (await world["entity"].get("/portal")).text
    assert "Gaps in your areas" in entity
    panel = entity.split("Gaps in your areas", 1)[1].split("</section>", 1)[0]
    # Its only area is border management (the database may hold other tests' gaps there).
    assert "Border management" in panel
    assert "Countering the financing of terrorism" not in panel  # not its area
    more = "/portal/coordination?show=gaps&amp;area=border_management"
    assert more in panel
    matrix = (await world["entity"].get(html.unescape(more))).text
    assert _row_of(matrix, shared_scene.third.code) is not None  # open needs, no one at work
    assert _row_of(matrix, world.state.code) is None  # at work there
    cted = (await world["analyst"].get("/portal")).text
    panel = cted.split("Overlaps to look at", 1)[1].split("</section>", 1)[0]
    # The panel names a few overlaps (the database may hold other tests' before ours) and
    # links to all of them, ours among them.
    assert "lead entities are at work in the same period" in panel
    assert "/portal/coordination?show=overlaps" in panel
    overlaps = (await world["analyst"].get("/portal/coordination?show=overlaps")).text
    assert _row_of(overlaps, world.state.code) is not None
    state = (await world["state"].get("/portal")).text
    panel = state.split("Your State in the coordination matrix", 1)[1].split("</section>", 1)[0]
    assert re.search(r"<dt>Gaps</dt><dd>1</dd>", panel)
    assert re.search(r"<dt>Overlaps</dt><dd>1</dd>", panel)
    assert f"/portal/coordination/states/{world.state.code}" in panel
    for who in ("admin", "auditor"):
        assert "/portal/coordination" not in (await world[who].get("/portal")).text, who


# --- languages ------------------------------------------------------------------------


async def test_pages_and_charts_in_french(shared_scene: Scene) -> None:
    client = shared_scene["analyst"]
    client.cookies.set("ctcp_lang", "fr")
    try:
        page = await client.get("/portal/coordination")
        assert page.status_code == 200 and 'lang="fr"' in page.text
        for french in ("Coordination", "Lacune", "Chevauchement", "Besoins ouverts : 1"):
            assert french in page.text, french
        chart = await client.get("/portal/coordination/charts/columns.svg")
        assert "Besoins ouverts et activités en cours, par domaine thématique" in chart.text
        state = await client.get(
            f"/portal/coordination/states/{shared_scene.world.state.code}/timeline.svg"
        )
        assert "Border guards training · Prévue" in state.text
        form = await client.get(f"/portal/activities/new?state={shared_scene.world.state.code}")
        assert "Consigner une activité" in html.unescape(form.text)
    finally:
        client.cookies.delete("ctcp_lang")
