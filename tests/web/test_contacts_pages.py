"""Portal pages of the directory of contact points: every page for every role, what each
reader sees of which State, the forms (errors kept on the form, stale edits), the
"confirm" button and the dashboard's entries to confirm, retiring, exports, French."""

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from ctcp.audit.service import AuditContext
from ctcp.contacts import service
from ctcp.contacts.models import ContactPoint
from ctcp.contacts.schemas import ContactPointContent, e164, international
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from tests.factories import audit_events, make_org, new_client
from tests.web.conftest import Reader, reader

S, OTHER, E, A, OFFICER, ADMIN, AUDITOR = (
    "state_focal_point",
    "other_state",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
ROLES = ("anonymous", S, OTHER, E, A, OFFICER, ADMIN, AUDITOR)
READERS = (S, OTHER, E, A, OFFICER)
PHONE = "+254 20 2222222"
SECRET_AUTHORITY = "Police 24/7 desk, Secretariat eyes only"


async def add_entry(
    database: Database,
    state: Organization,
    *,
    kind: str = "asset_freeze",
    authority: str = "Financial Reporting Centre",
    audience: str = "compact",
    languages: tuple[str, ...] = ("en",),
    confirmed_days_ago: int = 0,
    **extra: Any,
) -> uuid.UUID:
    """An entry written through the service (as `ctcp contacts import` writes one),
    last confirmed `confirmed_days_ago` days ago."""
    body = ContactPointContent.model_validate(
        {
            "kind": kind,
            "authority": authority,
            "email": "desk@authority.example.org",
            "languages": list(languages),
            "audience": audience,
            **extra,
        }
    )
    editor = service.Editor(AuditContext(), None, None)
    async with database.transaction() as session:
        entry = await service.insert_contact_point(
            session,
            editor,
            state,
            body,
            confirmed_at=clock.now() - timedelta(days=confirmed_days_ago),
        )
    return entry.id


async def stored(database: Database, entry_id: uuid.UUID | str) -> ContactPoint:
    async with database.sessionmaker() as session:
        entry = await session.get(ContactPoint, uuid.UUID(str(entry_id)))
        assert entry is not None
        return entry


@dataclass
class Scene:
    app: FastAPI
    database: Database
    state: Organization
    other_state: Organization
    readers: dict[str, Reader] = field(default_factory=dict)
    entries: dict[str, uuid.UUID] = field(default_factory=dict)

    def __getitem__(self, who: str) -> Reader:
        return self.readers[who]

    def entry(self, name: str) -> str:
        return str(self.entries[name])


@asynccontextmanager
async def _scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """A State with three entries (one per audience), another State, an entity, CTED and
    the roles that may not read the directory."""
    state = await make_org(database, name="Kenya for tests")
    other_state = await make_org(database, name="Other State for tests")
    entity = await make_org(database, kind="compact_entity")
    scene = Scene(app, database, state, other_state)
    scene.entries["compact"] = await add_entry(
        database,
        state,
        authority="Financial Reporting Centre",
        languages=("en", "fr"),
        phone=PHONE,
        notes="Urgent freezing requests by phone first.",
    )
    scene.entries["secret"] = await add_entry(
        database, state, kind="police_24_7", authority=SECRET_AUTHORITY, audience="secretariat"
    )
    scene.entries["shared"] = await add_entry(
        database,
        state,
        kind="mla_central_authority",
        authority="Office of the Attorney General",
        audience="member_states",
        languages=("en", "sw"),
        website="https://ag.example.org",
    )
    for name, roles, org in (
        (S, ("state_focal_point",), state),
        (OTHER, ("state_focal_point",), other_state),
        (E, ("entity_focal_point",), entity),
        (A, ("cted_analyst",), None),
        (OFFICER, ("consent_officer",), None),
        (ADMIN, ("platform_admin",), None),
        (AUDITOR, ("auditor",), None),
    ):
        kind = "compact_entity" if name == E else "member_state"
        scene.readers[name] = await reader(app, database, roles=roles, org=org, kind=kind)
    try:
        yield scene
    finally:
        for person in scene.readers.values():
            await person.client.aclose()


@pytest.fixture(scope="module")
async def shared_scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """One scene for the tests that read, are refused or send forms with errors."""
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
    compact, secret, shared = scene.entry("compact"), scene.entry("secret"), scene.entry("shared")
    code = scene.state.code
    return [
        ("/portal/contacts", _expect(200, READERS)),
        (
            f"/portal/contacts?state={code}&kind=asset_freeze&language=fr&q=financial&stale=1",
            _expect(200, READERS),
        ),
        (f"/portal/contacts/export?format=csv&state={code}", _expect(200, READERS)),
        (f"/portal/contacts/export?format=vcard&state={code}", _expect(200, READERS)),
        # As the API: a State reads its own entries, others' by audience; 404 outside.
        (f"/portal/contacts/{shared}", _expect(200, READERS)),
        (f"/portal/contacts/{compact}", _expect(200, READERS, other_state=404)),
        (f"/portal/contacts/{secret}", _expect(200, READERS, other_state=404, **{E: 404})),
        ("/portal/contacts/new", _expect(200, (S, OTHER, A))),
        (f"/portal/contacts/new?state={code}", _expect(200, (S, OTHER, A))),
        (f"/portal/contacts/{compact}/edit", _expect(200, (S, OTHER, A), other_state=404)),
        (f"/portal/contacts/{shared}/edit", _expect(200, (S, OTHER, A), other_state=404)),
        (f"/portal/contacts/{shared}/retire", _expect(200, (S, OTHER, A), other_state=404)),
        ("/portal/contacts/coverage", _expect(200, (A,))),
        ("/portal/contacts/coverage?gaps=1", _expect(200, (A,))),
    ]


def _post_rows(scene: Scene) -> list[tuple[str, dict[str, str], dict[str, int]]]:
    """Posts with a form that cannot be saved: 422 (re-rendered) for the roles allowed."""
    shared = scene.entry("shared")
    return [
        ("/portal/contacts/new", {}, _expect(422, (S, OTHER, A))),
        (
            f"/portal/contacts/{shared}/edit",
            {"authority": "", "version": "1"},
            _expect(422, (S, OTHER, A), other_state=404),
        ),
        # Based on a version that never was: the keepers are told it changed (nothing is
        # done); another State's focal point gets 404, as if the entry did not exist.
        (
            f"/portal/contacts/{shared}/confirm",
            {"version": "99"},
            _expect(303, (S, OTHER, A), other_state=404),
        ),
        (
            f"/portal/contacts/{shared}/retire",
            {"version": "99"},
            _expect(303, (S, OTHER, A), other_state=404),
        ),
    ]


async def _as(scene: Scene, role: str, method: str, path: str, data: dict[str, str]) -> Any:
    if role == "anonymous":
        async with new_client(scene.app) as anonymous:
            if method == "GET":
                return await anonymous.get(path)
            return await anonymous.post(path, data=data)
    person = scene[role]
    return await (person.get(path) if method == "GET" else person.post(path, data))


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
    # Nothing of those refusals changed the entry.
    entry = await stored(shared_scene.database, shared_scene.entries["shared"])
    assert entry.retired_at is None and entry.version == 1
    shared = shared_scene.entry("shared")
    for action in ("contact.confirm", "contact.retire"):
        assert await audit_events(shared_scene.database, action=action, object_id=shared) == [
            event
            for event in await audit_events(shared_scene.database, object_id=shared)
            if event.action == action and event.outcome == "denied"
        ]


async def test_pages_have_one_h1_and_no_script(shared_scene: Scene) -> None:
    for path, expected in _get_rows(shared_scene):
        if "/export" in path:
            continue
        for role in ROLES[1:]:
            if expected[role] != 200:
                continue
            page = await shared_scene[role].get(path)
            assert page.text.count("<h1") == 1, (path, role)
            assert "<script" not in page.text and "style=" not in page.text, (path, role)


async def test_refusals_are_audited_as_denials(shared_scene: Scene) -> None:
    other = shared_scene[OTHER]
    secret = shared_scene.entry("secret")
    assert (await other.get(f"/portal/contacts/{secret}")).status_code == 404
    assert (await shared_scene[AUDITOR].get("/portal/contacts")).status_code == 403
    denied = await audit_events(shared_scene.database, outcome="denied", object_id=secret)
    assert any(event.actor_user_id == other.user.id for event in denied)
    refused = await audit_events(shared_scene.database, outcome="denied", action="contact.read")
    assert any(event.actor_user_id == shared_scene[AUDITOR].user.id for event in refused)


# --- what each reader sees ------------------------------------------------------------


async def test_the_state_card_shows_every_kind_with_its_status(shared_scene: Scene) -> None:
    code = shared_scene.state.code
    page = await shared_scene[S].get(f"/portal/contacts?state={code}")
    assert page.status_code == 200
    card = page.text
    for authority in ("Financial Reporting Centre", "Office of the Attorney General"):
        assert authority in card
    assert SECRET_AUTHORITY in card  # the State reads all its own entries
    # Six kinds on the card: three present, three missing.
    assert card.count('class="badge badge-present"') == 3
    assert card.count('class="badge badge-missing"') == 3
    assert "24/7 police network" in card and "Counter-terrorism coordinator" in card
    # Numbers in international format, e-mail as a link, languages by name.
    assert international(e164(PHONE)) in card
    assert 'href="mailto:desk@authority.example.org"' in card
    assert "English, Swahili" in card


async def test_an_entity_sees_what_the_audience_allows_and_no_more(shared_scene: Scene) -> None:
    code = shared_scene.state.code
    page = await shared_scene[E].get(f"/portal/contacts?state={code}")
    assert "Financial Reporting Centre" in page.text
    assert "Office of the Attorney General" in page.text
    assert SECRET_AUTHORITY not in page.text
    # A kind the entity may not read counts as none listed, never as present.
    assert page.text.count('class="badge badge-present"') == 2
    # Another State's focal point reads only what is shared with Member States.
    other = await shared_scene[OTHER].get(f"/portal/contacts?state={code}")
    assert "Office of the Attorney General" in other.text
    assert "Financial Reporting Centre" not in other.text
    assert SECRET_AUTHORITY not in other.text
    # No history, no keeper's buttons for readers who only read.
    entry = await shared_scene[E].get(f"/portal/contacts/{shared_scene.entry('shared')}")
    assert "History" not in entry.text and "/confirm" not in entry.text
    assert "/edit" not in entry.text
    other_entry = await shared_scene[OTHER].get(f"/portal/contacts/{shared_scene.entry('shared')}")
    assert "History" not in other_entry.text and "/confirm" not in other_entry.text


async def test_an_entity_finds_an_entry_by_language_and_words(shared_scene: Scene) -> None:
    code = shared_scene.state.code
    swahili = await shared_scene[E].get(f"/portal/contacts?state={code}&language=sw")
    assert "Office of the Attorney General" in swahili.text
    assert "Financial Reporting Centre" not in swahili.text
    assert '<option value="sw" selected>' in swahili.text
    words = await shared_scene[E].get(f"/portal/contacts?state={code}&q=freezing+phone")
    assert "Financial Reporting Centre" in words.text
    assert "Office of the Attorney General" not in words.text
    nothing = await shared_scene[E].get(f"/portal/contacts?state={code}&stale=1")
    assert "Financial Reporting Centre" not in nothing.text
    for path in (
        "/portal/contacts?kind=embassy",
        "/portal/contacts?language=xx",
        "/portal/contacts?state=NOWHERE",
    ):
        refused = await shared_scene[E].get(path)
        assert refused.status_code == 422, path
        assert refused.headers["content-type"].startswith("text/html")


async def test_export_links_download_what_the_reader_may_list(shared_scene: Scene) -> None:
    code = shared_scene.state.code
    page = await shared_scene[E].get(f"/portal/contacts?state={code}&language=en")
    links = [
        html.unescape(link)
        for link in re.findall(r'href="(/portal/contacts/export[^"]+)"', page.text)
    ]
    assert len(links) == 2
    csv_link = next(link for link in links if "format=csv" in link)
    assert f"state={code}" in csv_link and "language=en" in csv_link
    exported = await shared_scene[E].get(csv_link)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "Financial Reporting Centre" in exported.text
    assert SECRET_AUTHORITY not in exported.text
    vcard = await shared_scene[E].get(next(link for link in links if "format=vcard" in link))
    assert vcard.headers["content-type"].startswith("text/vcard")
    assert vcard.text.count("BEGIN:VCARD") == 2
    exports = await audit_events(shared_scene.database, action="contact.export")
    assert any(event.actor_user_id == shared_scene[E].user.id for event in exports)


async def test_entry_text_is_escaped(scene: Scene) -> None:
    entry = await add_entry(
        scene.database, scene.state, authority="<b>Bold</b> authority", audience="member_states"
    )
    page = await scene[E].get(f"/portal/contacts/{entry}")
    assert "&lt;b&gt;Bold&lt;/b&gt; authority" in page.text and "<b>Bold" not in page.text


async def test_the_coverage_page_shows_what_each_state_lacks(shared_scene: Scene) -> None:
    page = await shared_scene[A].get("/portal/contacts/coverage?gaps=1")
    assert page.status_code == 200
    row = re.search(
        rf'<tr>\s*<th scope="row"><a href="/portal/contacts\?state={shared_scene.state.code}">'
        r"(.*?)</tr>",
        page.text,
        re.S,
    )
    assert row, "the State has no row"
    assert row.group(1).count("badge-present") == 3 and row.group(1).count("badge-missing") == 3


async def test_the_directory_pages_by_state(scene: Scene) -> None:
    state = await make_org(scene.database)
    for number in range(51):
        await add_entry(scene.database, state, authority=f"Paged authority {number:02}")
    first = await scene[A].get(f"/portal/contacts?state={state.code}")
    assert first.status_code == 200 and first.text.count("Paged authority") == 50
    match = re.search(r'href="([^"]*cursor=[^"]+)" rel="next"', first.text)
    assert match, "no next page link"
    second = await scene[A].get(html.unescape(match.group(1)))
    assert second.status_code == 200 and second.text.count("Paged authority") == 1
    assert "First page" in second.text


# --- forms ----------------------------------------------------------------------------


def _form(**changes: str) -> dict[str, str]:
    return {
        "kind": "financial_intelligence_unit",
        "authority": "Financial Intelligence Unit of Tests",
        "email": "fiu@tests.example.org",
        "phone": "+33 1 40 00 00 00",
        "fax": "",
        "website": "https://fiu.example.org",
        "request_form_url": "",
        "languages": "fr, en",
        "working_hours": "Mon-Fri 09:00-17:00",
        "time_zone": "Europe/Paris",
        "notes": "Requests through the Egmont Secure Web.",
        "audience": "compact",
    } | changes


async def _entries_named(database: Database, authority: str) -> list[ContactPoint]:
    async with database.sessionmaker() as session:
        found = await session.exec(
            select(ContactPoint).where(col(ContactPoint.authority) == authority)
        )
        return list(found.all())


async def test_the_form_keeps_entries_and_shows_errors(shared_scene: Scene) -> None:
    authority = "Unit kept on the form"
    bad = _form(
        authority=authority,
        email="not-an-address",
        phone="01 40 00 00 00",
        website="http://fiu.example.org",
        languages="fr, xx",
    )
    answer = await shared_scene[S].post("/portal/contacts/new", bad)
    assert answer.status_code == 422
    page = answer.text
    assert "The form could not be saved" in page
    assert f'value="{authority}"' in page and 'value="not-an-address"' in page
    assert 'value="01 40 00 00 00"' in page and 'value="fr, xx"' in page
    assert "Requests through the Egmont Secure Web." in page
    assert '<option value="financial_intelligence_unit" selected>' in page
    for field_id in ("email", "phone", "website", "languages"):
        assert f'id="{field_id}-error"' in page, field_id
        assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"', page), field_id
    assert "Enter a valid e-mail address." in page
    assert "Enter an international number" in page
    assert "Enter an https:// link." in page
    assert "Unknown language codes: xx." in page
    assert await _entries_named(shared_scene.database, authority) == []


async def test_a_state_adds_an_entry_of_its_own_state_only(scene: Scene) -> None:
    authority = f"Unit {uuid.uuid4().hex[:8]}"
    # A State's form has no State field: a smuggled one is ignored.
    added = await scene[S].post(
        "/portal/contacts/new", _form(authority=authority, state=scene.other_state.code)
    )
    assert added.status_code == 303
    entry_id = added.headers["location"].rsplit("/", 1)[1]
    (entry,) = await _entries_named(scene.database, authority)
    assert str(entry.id) == entry_id and entry.state_id == scene.state.id
    assert entry.phone == "+33140000000" and entry.languages == "en,fr"
    page = await scene[S].get(added.headers["location"])
    assert "The entry was added." in page.text and "+33 1 40 00 00 00" in page.text
    created = await audit_events(scene.database, action="contact.create", object_id=entry_id)
    assert [event.actor_user_id for event in created] == [scene[S].user.id]


async def test_cted_adds_an_entry_for_any_state(scene: Scene) -> None:
    authority = f"Unit {uuid.uuid4().hex[:8]}"
    form = await scene[A].get(f"/portal/contacts/new?state={scene.other_state.code}")
    assert f'<option value="{scene.other_state.code}" selected>' in form.text
    missing_state = await scene[A].post("/portal/contacts/new", _form(authority=authority))
    assert missing_state.status_code == 422 and 'id="state-error"' in missing_state.text
    added = await scene[A].post(
        "/portal/contacts/new", _form(authority=authority, state=scene.other_state.code)
    )
    assert added.status_code == 303
    (entry,) = await _entries_named(scene.database, authority)
    assert entry.state_id == scene.other_state.id


async def test_an_edit_is_saved_and_shown_in_the_history(scene: Scene) -> None:
    entry_id = scene.entry("compact")
    form = await scene[S].get(f"/portal/contacts/{entry_id}/edit")
    assert form.status_code == 200
    assert 'name="version" value="1"' in form.text
    assert f'value="{international(e164(PHONE))}"' in form.text
    saved = await scene[S].post(
        f"/portal/contacts/{entry_id}/edit",
        _form(
            kind="asset_freeze",
            authority="Financial Reporting Centre",
            email="freeze@frc.example.org",
            phone=PHONE,
            version="1",
        ),
    )
    assert saved.status_code == 303
    entry = await stored(scene.database, entry_id)
    assert entry.email == "freeze@frc.example.org" and entry.version == 2
    page = await scene[S].get(f"/portal/contacts/{entry_id}")
    assert "Saved." in page.text and "History" in page.text
    assert "desk@authority.example.org” → “freeze@frc.example.org" in page.text
    assert "Imported from a file" in page.text  # the first version came from the service
    assert scene[S].user.name in page.text
    # The same form again changes nothing.
    again = await scene[S].post(
        f"/portal/contacts/{entry_id}/edit",
        _form(
            kind="asset_freeze",
            authority="Financial Reporting Centre",
            email="freeze@frc.example.org",
            phone=PHONE,
            version="2",
        ),
    )
    assert again.status_code == 303
    assert "Nothing was changed." in (await scene[S].get(again.headers["location"])).text
    assert (await stored(scene.database, entry_id)).version == 2


async def test_a_stale_edit_is_refused_with_a_clear_message(scene: Scene) -> None:
    entry_id = scene.entry("shared")
    form = await scene[S].get(f"/portal/contacts/{entry_id}/edit")
    assert 'name="version" value="1"' in form.text
    # Meanwhile CTED changes the e-mail.
    meanwhile = await scene[A].post(
        f"/portal/contacts/{entry_id}/edit",
        _form(
            kind="mla_central_authority",
            authority="Office of the Attorney General",
            email="mla@ag.example.org",
            languages="en, sw",
            audience="member_states",
            version="1",
        ),
    )
    assert meanwhile.status_code == 303
    mine = _form(
        kind="mla_central_authority",
        authority="Office of the Attorney General, MLA unit",
        email="desk@authority.example.org",
        languages="en, sw",
        audience="member_states",
        version="1",
    )
    refused = await scene[S].post(f"/portal/contacts/{entry_id}/edit", mine)
    assert refused.status_code == 409
    assert "Someone changed this entry after you opened it" in refused.text
    assert 'value="Office of the Attorney General, MLA unit"' in refused.text
    assert "mla@ag.example.org" in refused.text  # what the entry now says
    assert 'name="version" value="2"' in refused.text
    entry = await stored(scene.database, entry_id)
    assert entry.authority == "Office of the Attorney General"
    assert entry.email == "mla@ag.example.org" and entry.version == 2
    # Having seen the change, the focal point saves again, over version 2.
    again = await scene[S].post(f"/portal/contacts/{entry_id}/edit", mine | {"version": "2"})
    assert again.status_code == 303
    entry = await stored(scene.database, entry_id)
    assert entry.authority == "Office of the Attorney General, MLA unit" and entry.version == 3


# --- confirming, the dashboard, retiring ----------------------------------------------


async def test_the_dashboard_lists_entries_to_confirm_and_the_button_confirms(
    scene: Scene,
) -> None:
    stale = await add_entry(
        scene.database,
        scene.state,
        kind="ct_coordinator",
        authority="Stale coordinator",
        confirmed_days_ago=400,
    )
    soon = await add_entry(
        scene.database,
        scene.state,
        kind="police_24_7",
        authority="Soon stale desk",
        confirmed_days_ago=350,
    )
    await add_entry(
        scene.database,
        scene.other_state,
        authority="Other State's stale unit",
        confirmed_days_ago=400,
    )
    dashboard = await scene[S].get("/portal")
    assert "Your entries to confirm" in dashboard.text
    assert "Stale coordinator" in dashboard.text and "Soon stale desk" in dashboard.text
    assert "Financial Reporting Centre" not in dashboard.text  # confirmed today
    assert "Other State's stale unit" not in dashboard.text
    # CTED and entities have no such panel.
    assert "Your entries to confirm" not in (await scene[A].get("/portal")).text
    assert "Your entries to confirm" not in (await scene[E].get("/portal")).text
    directory = await scene[S].get(f"/portal/contacts?state={scene.state.code}&stale=1")
    assert "Stale coordinator" in directory.text and "Soon stale desk" not in directory.text

    before = (await stored(scene.database, stale)).confirmed_at
    confirmed = await scene[S].post(
        f"/portal/contacts/{stale}/confirm", {"version": "1", "next": "/portal"}
    )
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/portal"
    entry = await stored(scene.database, stale)
    assert entry.confirmed_at > before + timedelta(days=399) and entry.version == 1
    events = await audit_events(scene.database, action="contact.confirm", object_id=str(stale))
    assert [(e.actor_user_id, e.outcome) for e in events] == [(scene[S].user.id, "allowed")]
    after = await scene[S].get("/portal")
    assert "Confirmed: the entry is marked as current" in after.text
    assert "Stale coordinator" not in after.text and "Soon stale desk" in after.text
    page = await scene[S].get(f"/portal/contacts/{stale}")
    assert "Confirmed as current" in page.text and "Out of date:" not in page.text
    assert (await stored(scene.database, soon)).version == 1


async def test_confirming_a_changed_entry_says_so(scene: Scene) -> None:
    entry_id = scene.entry("compact")
    assert (
        await scene[A].post(
            f"/portal/contacts/{entry_id}/edit",
            _form(kind="asset_freeze", authority="Renamed centre", languages="en", version="1"),
        )
    ).status_code == 303
    stale_button = await scene[S].post(f"/portal/contacts/{entry_id}/confirm", {"version": "1"})
    assert stale_button.status_code == 303
    page = await scene[S].get(stale_button.headers["location"])
    assert "Someone changed this entry after you opened it" in page.text
    assert (
        await audit_events(scene.database, action="contact.confirm", object_id=str(entry_id)) == []
    )


async def test_retiring_asks_first_then_removes_the_entry(scene: Scene) -> None:
    entry_id = scene.entry("shared")
    entry_page = await scene[S].get(f"/portal/contacts/{entry_id}")
    assert f'href="/portal/contacts/{entry_id}/retire"' in entry_page.text
    asked = await scene[S].get(f"/portal/contacts/{entry_id}/retire")
    assert "Are you sure?" in asked.text
    assert (await stored(scene.database, entry_id)).retired_at is None
    retired = await scene[S].post(f"/portal/contacts/{entry_id}/retire", {"version": "1"})
    assert retired.status_code == 303
    assert retired.headers["location"] == f"/portal/contacts?state={scene.state.code}"
    assert (await stored(scene.database, entry_id)).retired_at is not None
    assert (await scene[E].get(f"/portal/contacts/{entry_id}")).status_code == 404
    listing = await scene[S].get(retired.headers["location"])
    assert "The entry was retired." in listing.text
    assert "Office of the Attorney General" not in listing.text
    events = await audit_events(scene.database, action="contact.retire", object_id=str(entry_id))
    assert [event.actor_user_id for event in events] == [scene[S].user.id]


# --- languages ------------------------------------------------------------------------


async def test_pages_in_french(app: FastAPI, database: Database, shared_scene: Scene) -> None:
    code = shared_scene.state.code
    person = await reader(
        app, database, roles=("state_focal_point",), org=shared_scene.state, locale="fr"
    )
    try:
        directory = await person.get(f"/portal/contacts?state={code}")
        assert directory.status_code == 200 and 'lang="fr"' in directory.text
        for french in (
            "Points de contact",
            "Réseau de police 24/7",
            "Coordonnateur de la lutte antiterroriste",
            "Aucune entrée",
            "anglais, swahili",
        ):
            assert french in directory.text, french
        entry = await person.get(f"/portal/contacts/{shared_scene.entry('shared')}")
        assert "Historique" in entry.text
        assert "Confirmer, rien n'a changé" in html.unescape(entry.text)
        form = await person.post("/portal/contacts/new", _form(phone="12", languages=""))
        assert form.status_code == 422
        assert "Saisissez un numéro international" in form.text
        assert "Indiquez au moins une langue" in form.text
        for path in (
            "/portal/contacts/new",
            f"/portal/contacts/{shared_scene.entry('shared')}/edit",
        ):
            page = await person.get(path)
            assert page.status_code == 200 and "Autorité" in page.text, path
        dashboard = await person.get("/portal")
        assert "Vos entrées à confirmer" in dashboard.text
    finally:
        await person.client.aclose()
