"""`ctcp demo`: a living data set built through the services, once, on both backends."""

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pycountry
import pytest
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from ctcp.app import create_app
from ctcp.assistance.models import (
    AssistanceRequest,
    CapacityConsultation,
    IndicatorUpdate,
    Need,
    Offer,
    PlanIndicator,
    PlanMeasure,
)
from ctcp.audit import service as audit
from ctcp.audit.models import AuditEvent
from ctcp.audit.service import AuditContext
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.consent import service as consent
from ctcp.consent.models import ConsentEvent, NeedsSharingEvent, Publication, PublicationSection
from ctcp.contacts.models import ContactPoint, ContactPointVersion
from ctcp.contacts.schemas import REMIND_DAYS_BEFORE_STALE, STALE_AFTER_DAYS
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.models import User
from ctcp.identity.passwords import PasswordHasher
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization
from ctcp.planning import service as planning
from ctcp.planning.models import Activity, ActivityMeasure, ActivityNeed, ActivityPartner
from ctcp.reports.models import ReportSection, VisitReport
from ctcp_demo import content
from ctcp_demo import service as demo_service
from ctcp_demo.content import DEMO_PASSWORD
from tests.conftest import database_like
from tests.factories import new_client, run_ctcp, table_counts

TABLES: dict[str, type[SQLModel]] = {
    "users": User,
    "report versions": VisitReport,
    "consent events": ConsentEvent,
    "publications": Publication,
    "needs-sharing events": NeedsSharingEvent,
    "needs": Need,
    "requests": AssistanceRequest,
    "offers": Offer,
    "consultations": CapacityConsultation,
    "measures": PlanMeasure,
    "indicators": PlanIndicator,
    "progress updates": IndicatorUpdate,
    "activities": Activity,
    "activity partners": ActivityPartner,
    "activity needs": ActivityNeed,
    "activity measures": ActivityMeasure,
    "contact points": ContactPoint,
    "contact-point versions": ContactPointVersion,
    "audit events": AuditEvent,
}
EXPECTED = {
    "users": 12,
    "report versions": 7,
    "consent events": 7,
    "publications": 5,
    "needs-sharing events": 2,
    "needs": 13,
    "requests": 7,
    "offers": 7,
    "consultations": 2,
    "measures": 7,
    "indicators": 8,
    "progress updates": 8,
    # Two planned by accepting offers, twelve recorded: five planned, six ongoing, two
    # completed, one cancelled.
    "activities": 14,
    "activity partners": 10,
    "activity needs": 13,
    "activity measures": 5,
    # Each entry's creation, France's change of number and Kenya's confirmation.
    "contact points": 23,
    "contact-point versions": 25,
}
DEMO_STATES = {"KEN", "FRA", "IDN", "JOR", "COL"}


@dataclass
class DemoRun:
    url: str
    first: tuple[int, str]
    second: tuple[int, str]
    after_first: dict[str, int]
    after_second: dict[str, int]


@pytest.fixture(scope="module")
def demo_run(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`ctcp load-reference-data`, then `ctcp demo` twice, as scripts/run-portal runs them."""
    directory = tmp_path_factory.mktemp("demo")
    with database_like(database_url, directory / "demo.db") as url:
        env = {
            "CTCP_DATABASE_URL": url,
            "CTCP_VAR_DIR": str(directory),
            "CTCP_ENVIRONMENT": "development",
        }
        assert run_ctcp(env, "load-reference-data")[0] == 0
        first = run_ctcp(env, "demo")
        after_first = asyncio.run(table_counts(url, TABLES))
        second = run_ctcp(env, "demo")
        after_second = asyncio.run(table_counts(url, TABLES))
        yield DemoRun(url, first, second, after_first, after_second)


@pytest.fixture
async def demo_app(demo_run: DemoRun, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"database_url": demo_run.url}))
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def _signed_in(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as a demo account with the demo password."""
    async with new_client(app) as client:
        email = f"{key}@{content.DEMO_DOMAIN}"
        response = await client.post(
            "/api/v1/session", json={"email": email, "password": DEMO_PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


async def _report_ids(url: str, state: str) -> list[str]:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            rows = await session.exec(
                select(VisitReport.id)
                .join(Organization, col(Organization.id) == col(VisitReport.state_id))
                .where(col(Organization.code) == state)
            )
            return [str(report_id) for report_id in rows.all()]
    finally:
        await database.dispose()


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_demo_fills_the_expected_counts_and_prints_the_accounts(demo_run: DemoRun) -> None:
    code, output = demo_run.first
    assert code == 0, output
    counts = {name: demo_run.after_first[name] for name in EXPECTED}
    assert counts == EXPECTED
    assert demo_run.after_first["audit events"] > 80
    for account in content.ACCOUNTS:
        assert account.email in output
    assert "live publications" in output and DEMO_PASSWORD in output


def test_a_second_run_adds_nothing(demo_run: DemoRun) -> None:
    code, output = demo_run.second
    assert code == 0, output
    assert "demo data already present" in output
    assert demo_run.after_second == demo_run.after_first


def test_production_is_refused_without_force(tmp_path: Path) -> None:
    env = {
        "CTCP_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}",
        "CTCP_ENVIRONMENT": "production",
        "CTCP_SECRET_KEY": "a-production-secret-of-enough-length-0123456789",
    }
    code, output = run_ctcp(env, "demo")
    assert code == 2 and "production" in output
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.parametrize("command", [["demo"], ["setup", "--demo"]])
def test_an_install_without_the_demo_package_says_so(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production install has no ctcp_demo: exit 2 before any step touches the database."""
    monkeypatch.setitem(sys.modules, "ctcp_demo", None)  # as if not installed
    env = {"CTCP_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}"}
    code, output = run_ctcp(env, *command)
    assert code == 2
    assert "the demo data set is not part of this install" in " ".join(output.split())
    assert not (tmp_path / "absent.db").exists()


def test_a_weak_demo_password_is_refused(demo_run: DemoRun, tmp_path: Path) -> None:
    env = {"CTCP_DATABASE_URL": demo_run.url, "CTCP_VAR_DIR": str(tmp_path)}
    code, output = run_ctcp(env, "demo", "--password", "short")
    assert code == 2 and "password" in output.lower()


async def test_the_audit_chain_verifies_afterwards(demo_run: DemoRun) -> None:
    database = Database(demo_run.url)
    try:
        async with database.read_sessionmaker() as session:
            result = await audit.verify_chain(session)
    finally:
        await database.dispose()
    assert result.valid and result.checked == demo_run.after_first["audit events"]


async def test_every_publication_is_exactly_what_its_consent_allows(demo_run: DemoRun) -> None:
    database = Database(demo_run.url)
    try:
        async with database.sessionmaker() as session:
            publications = (await session.exec(select(Publication))).all()
            live_ids = set(
                (await session.exec(select(Publication.id).where(consent.live(clock.now())))).all()
            )
            states = {o.id: o.code for o in (await session.exec(select(Organization))).all()}
            for publication in publications:
                event = await session.get(ConsentEvent, publication.consent_event_id)
                assert event is not None and event.report_id == publication.report_id
                assert event.scope in ("full", "partial") and event.audience == publication.audience
                published = set(
                    (
                        await session.exec(
                            select(PublicationSection.section_id).where(
                                col(PublicationSection.publication_id) == publication.id
                            )
                        )
                    ).all()
                )
                sections = (
                    await session.exec(
                        select(ReportSection).where(
                            col(ReportSection.report_id) == publication.report_id
                        )
                    )
                ).all()
                if event.scope == "full":
                    assert published == {s.id for s in sections}
                else:
                    assert {str(s) for s in published} == set(event.section_ids)
            live = {states[p.state_id]: p for p in publications if p.id in live_ids}
            assert set(live) == {"KEN", "FRA", "IDN"}
            # Withdrawn by Jordan itself; never consented by Colombia.
            assert "JOR" in {states[p.state_id] for p in publications}
            france = (
                await session.exec(
                    select(PublicationSection.area).where(
                        col(PublicationSection.publication_id) == live["FRA"].id
                    )
                )
            ).all()
            assert set(france) == {area.value for area in content.FRANCE_CONSENTED}
            assert live["IDN"].audience == "public"
            indonesia = await session.get(VisitReport, live["IDN"].report_id)
            assert indonesia is not None and indonesia.version == 2
            withdrawals = (
                await session.exec(select(ConsentEvent).where(col(ConsentEvent.withdrawal)))
            ).all()
            jordan_report = next(p.report_id for p in publications if states[p.state_id] == "JOR")
            by_jordan = [e for e in withdrawals if e.report_id == jordan_report]
            assert len(by_jordan) == 1
            focal_point = await session.get(User, by_jordan[0].recorded_by)
            assert focal_point is not None and focal_point.email.startswith("focal.jordan@")
    finally:
        await database.dispose()


async def test_a_state_focal_point_reads_only_their_own_reports(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    async with _signed_in(demo_app, "focal.kenya") as kenya:
        listed = await kenya.get("/api/v1/reports")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) == 2 and {item["state"]["code"] for item in items} == {"KEN"}
        assert {item["status"] for item in items} == {"adopted", "draft"}
        for report_id in await _report_ids(demo_run.url, "JOR"):
            assert (await kenya.get(f"/api/v1/reports/{report_id}")).status_code == 404


async def test_an_entity_focal_point_sees_only_consented_material(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    async with _signed_in(demo_app, "focal.unodc") as unodc:
        assert (await unodc.get("/api/v1/reports")).status_code == 403
        listed = await unodc.get("/api/v1/publications")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert {item["state"] for item in items} == {"KEN", "FRA", "IDN"}
        strings = list(_strings(listed.json()))
        unconsented = [
            body
            for area, (body, _) in content.FRANCE_SECTIONS.items()
            if area not in content.FRANCE_CONSENTED
        ] + [
            body
            for sections in (content.JORDAN_SECTIONS, content.COLOMBIA_SECTIONS)
            for body, _ in sections.values()
        ]
        for body in unconsented:
            assert not any(body in text for text in strings), body[:40]
        for word, hits in (("mobile-money", True), ("renouvellement", False), ("pipelines", False)):
            found = await unodc.get("/api/v1/search", params={"q": word})
            assert found.status_code == 200, found.text
            assert bool(found.json()["items"]) is hits, word
        needs = await unodc.get("/api/v1/needs", params={"limit": 200})
        assert needs.status_code == 200, needs.text
        assert {n["state"]["code"] for n in needs.json()["items"]} == {"KEN", "IDN", "COL"}


def _when(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["confirmed_at"])


async def _directory(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/contact-points", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_the_directory_mixes_audiences_languages_and_valid_numbers(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    async with _signed_in(demo_app, "analyst") as analyst:
        items = await _directory(analyst)
    assert len(items) == EXPECTED["contact points"]
    assert {item["state"]["code"] for item in items} == DEMO_STATES
    assert {item["audience"] for item in items} == {"secretariat", "compact", "member_states"}
    assert {"en", "fr", "es", "ar", "sw", "id"} <= {code for i in items for code in i["languages"]}
    assert len({item["kind"] for item in items}) == 6
    for item in items:
        # Each number belongs to the State's own country, as the library reads it.
        country = pycountry.countries.get(alpha_3=item["state"]["code"])
        assert country is not None
        for number in (item["phone"], item["fax"]):
            if number is not None:
                parsed = phonenumbers.parse(number)
                assert phonenumbers.is_valid_number(parsed), number
                assert phonenumbers.region_code_for_number(parsed) == country.alpha_2, number
        assert item["email"].endswith(".example")
        for link in (item["website"], item["request_form_url"]):
            assert link is None or link.startswith("https://")
    # Two entries in one State of one kind: Indonesia's two central authorities.
    indonesian = [
        i["kind"]
        for i in items
        if i["state"]["code"] == "IDN" and i["kind"] == "mla_central_authority"
    ]
    assert len(indonesian) == 2


async def test_stale_entries_and_missing_kinds_show_in_the_coverage_view(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    async with _signed_in(demo_app, "analyst") as analyst:
        stale = await _directory(analyst, stale="true")
        response = await analyst.get("/api/v1/contact-points/coverage")
    assert {(i["state"]["code"], i["kind"]) for i in stale} == {
        ("JOR", "asset_freeze"),
        ("COL", "police_24_7"),
    }
    cutoff = datetime.now().astimezone() - timedelta(days=STALE_AFTER_DAYS)
    assert all(item["stale"] and _when(item) < cutoff for item in stale)
    assert response.status_code == 200, response.text
    coverage = {row["state"]["code"]: row for row in response.json()}
    assert coverage["FRA"]["missing"] == []
    assert set(coverage["KEN"]["missing"]) == {"extradition_central_authority"}
    assert {"asset_freeze", "extradition_central_authority"} <= set(coverage["IDN"]["missing"])
    assert coverage["JOR"]["stale"] == 1 and coverage["COL"]["stale"] == 1
    # States outside the demo have every kind missing.
    assert set(coverage["NGA"]["missing"]) == {k["kind"] for k in coverage["NGA"]["kinds"]}


async def test_kenyas_focal_point_has_one_entry_to_confirm(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    """Kenya's central authority turns stale within the reminder window: the entry its
    focal point (Wanjiru Kamau) is asked to confirm."""
    now = datetime.now().astimezone()
    soon = now - timedelta(days=STALE_AFTER_DAYS - REMIND_DAYS_BEFORE_STALE)
    async with _signed_in(demo_app, "focal.kenya") as kenya:
        own = await _directory(kenya, state="KEN")
        due = [item for item in own if _when(item) < soon]
        assert [(i["kind"], i["authority"], i["stale"]) for i in due] == [
            (
                "mla_central_authority",
                "Office of the Attorney General — Central Authority",
                False,
            )
        ]
        # Kenya's own entries, the Secretariat-only one included.
        assert {i["audience"] for i in own} == {"secretariat", "compact", "member_states"}
        history = await kenya.get(f"/api/v1/contact-points/{due[0]['id']}/history")
        assert history.status_code == 200, history.text
        assert [v["change"] for v in history.json()] == ["created"]
        assert history.json()[0]["actor"]["organization"] == "CTED"


async def test_the_history_shows_the_demos_change_and_confirmation(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    async with _signed_in(demo_app, "analyst") as analyst:
        entries = {
            (i["state"]["code"], i["kind"]): i
            for i in await _directory(analyst, kind="financial_intelligence_unit")
        }
        france = entries[("FRA", "financial_intelligence_unit")]
        kenya = entries[("KEN", "financial_intelligence_unit")]
        changed = (await analyst.get(f"/api/v1/contact-points/{france['id']}/history")).json()
        confirmed = (await analyst.get(f"/api/v1/contact-points/{kenya['id']}/history")).json()
    assert france["version"] == 2 and france["phone"] == "+33199003010"
    assert [v["change"] for v in changed] == ["updated", "created"]
    assert changed[0]["changes"]["phone"] == {"before": "+33199003000", "after": "+33199003010"}
    assert changed[0]["actor"]["name"] == "Claire Dubois (France)"
    assert [v["change"] for v in confirmed] == ["confirmed", "created"]
    assert confirmed[0]["actor"]["name"] == "Wanjiru Kamau (Kenya)"
    assert not kenya["stale"] and kenya["version"] == 1


async def test_entities_and_other_states_read_only_their_audiences(
    demo_app: FastAPI, demo_run: DemoRun
) -> None:
    async with _signed_in(demo_app, "focal.unodc") as unodc:
        seen = await _directory(unodc)
        swahili = await _directory(unodc, language="sw")
    assert {i["audience"] for i in seen} == {"compact", "member_states"}
    assert len(seen) == EXPECTED["contact points"] - 2  # the two Secretariat-only entries
    assert {i["state"]["code"] for i in swahili} == {"KEN"}
    assert "Office of the Attorney General — Central Authority" in {i["authority"] for i in swahili}
    async with _signed_in(demo_app, "focal.france") as france:
        seen = await _directory(france)
    others = [i for i in seen if i["state"]["code"] != "FRA"]
    assert others and {i["audience"] for i in others} == {"member_states"}
    assert len([i for i in seen if i["state"]["code"] == "FRA"]) == 6


async def test_a_demo_loaded_before_the_directory_gets_it_and_nothing_else(
    fresh_database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing demo database (loaded before the directory existed) gets the directory
    on the next `ctcp demo`, written by its own accounts; a third run adds nothing."""
    database = Database(fresh_database_url)
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )

    async def load() -> demo_service.DemoSummary | None:
        async with database.transaction() as session:
            return await demo_service.load_demo(
                session, password=DEMO_PASSWORD, hasher=hasher, context=AuditContext()
            )

    async def without_directory(demo: Any) -> None:
        pass

    try:
        async with database.transaction() as session:
            await organizations.load_reference_data(session, context=AuditContext())
        with monkeypatch.context() as patched:
            patched.setattr(demo_service, "_contact_points", without_directory)
            assert await load() is not None
        before = await table_counts(fresh_database_url, TABLES)
        assert before["contact points"] == 0
        topped_up = await load()
        assert topped_up is not None
        assert topped_up.counts == {"contact points": 23, "contact-point versions": 25}
        after = await table_counts(fresh_database_url, TABLES)
        # Kenya changes the marker entry's address, then retires it: still there.
        async with database.transaction() as session:
            marker = await session.get(ContactPoint, content.CONTACT_MARKER_ID)
            assert marker is not None
            marker.email, marker.retired_at = "new.address@ag.go.ke.example", clock.now()
            session.add(marker)
        assert await load() is None
        assert await table_counts(fresh_database_url, TABLES) == after
        async with database.sessionmaker() as session:
            writers = set(
                (
                    await session.exec(
                        select(User.email).join(
                            ContactPointVersion,
                            col(ContactPointVersion.actor_user_id) == col(User.id),
                        )
                    )
                ).all()
            )
    finally:
        await database.dispose()
    added = {name: after[name] - before[name] for name in TABLES}
    assert added == {
        **dict.fromkeys(TABLES, 0),
        "contact points": 23,
        "contact-point versions": 25,
        "audit events": added["audit events"],
    }
    # One event per entry written, per change and per confirmation.
    assert added["audit events"] == 25
    assert {f"{key}@{content.DEMO_DOMAIN}" for key in ("analyst", "focal.kenya")} <= writers


# --- joint planning -------------------------------------------------------------------------


async def _matrix(client: httpx.AsyncClient) -> dict[tuple[str, str], dict[str, Any]]:
    response = await client.get("/api/v1/coordination/matrix")
    assert response.status_code == 200, response.text
    return {(cell["state"], cell["area"]): cell for cell in response.json()["cells"]}


def _flagged(cells: dict[tuple[str, str], dict[str, Any]], flag: str) -> list[tuple[str, str]]:
    return sorted(key for key, cell in cells.items() if cell[flag])


async def test_the_matrix_shows_one_gap_and_one_overlap(demo_app: FastAPI) -> None:
    """CTED sees every State's row: every open need worked on but Kenya's asset freezing
    (its workshop cancelled), and Kenya's border management with two leads at once."""
    async with _signed_in(demo_app, "analyst") as analyst:
        cells = await _matrix(analyst)
    assert _flagged(cells, "gap") == [content.DEMO_GAP]
    assert _flagged(cells, "overlap") == [content.DEMO_OVERLAP]
    assert {state for state, _ in cells} == DEMO_STATES - {"FRA"}
    gap = cells[content.DEMO_GAP]
    assert gap["open_needs"] == 1 and gap["entities"] == []
    assert gap["activities"] == {
        "planned": 0,
        "ongoing": 0,
        "completed": 0,
        "cancelled": 1,
        "total": 1,
    }
    overlap = cells[content.DEMO_OVERLAP]
    # IOM (from the accepted offer, ICAO its partner) and INTERPOL (IOM its partner) at
    # work; ICAO's completed workshop counts but does not overlap.
    assert overlap["entities"] == ["ICAO", "INTERPOL", "IOM"]
    assert overlap["activities"]["planned"] == 1 and overlap["activities"]["ongoing"] == 1
    assert overlap["activities"]["completed"] == 1
    # A cell of completed work only, with no open need: neither flag.
    legislation = cells[("KEN", "legislation")]
    assert legislation["open_needs"] == 0 and not legislation["gap"]
    assert legislation["activities"]["completed"] == 1


async def test_the_service_counts_the_same_cells_for_cted(demo_run: DemoRun) -> None:
    """`read_matrix` with the analyst's grant, straight on the database."""
    database = Database(demo_run.url)
    try:
        async with database.transaction() as session:
            analyst = await session.exec(
                select(User).where(col(User.email) == content.MARKER_EMAIL)
            )
            user = analyst.one()
            cted = await organizations.organization_by_code(session, "CTED")
            assert cted is not None
            access = Access(
                Subject(
                    user_id=user.id,
                    client_id=None,
                    organization=cted,
                    roles=frozenset({"cted_analyst"}),
                    audit=AuditContext().as_user(user.id, cted.code),
                ),
                "activity",
                "read",
                frozenset({DataScope.ALL}),
            )
            matrix = await planning.read_matrix(session, access, planning.MatrixFilters())
            by_year = await planning.read_matrix(session, access, planning.MatrixFilters(year=2025))
            await session.rollback()  # the read's audit event is not the demo's
    finally:
        await database.dispose()
    assert [(c.state, c.area) for c in matrix.cells if c.gap] == [content.DEMO_GAP]
    assert [(c.state, c.area) for c in matrix.cells if c.overlap] == [content.DEMO_OVERLAP]
    # In 2025 only UNOCT's drafting support was under way (since completed).
    assert [(c.state, c.area) for c in by_year.cells if c.activities.total] == [
        ("KEN", "legislation")
    ]


async def test_an_entity_sees_the_flags_only_in_states_that_share_their_needs(
    demo_app: FastAPI,
) -> None:
    """Kenya and Colombia share their needs; Indonesia (by its report only), Jordan
    (withdrawn) and France do not: UNODC gets no cell of theirs, not even of its own work.
    A State's focal point sees its own row."""
    async with _signed_in(demo_app, "focal.unodc") as unodc:
        seen = await _matrix(unodc)
    assert {state for state, _ in seen} == {"KEN", "COL"}
    assert _flagged(seen, "gap") == [content.DEMO_GAP]
    assert _flagged(seen, "overlap") == [content.DEMO_OVERLAP]
    async with _signed_in(demo_app, "focal.jordan") as jordan:
        own = await _matrix(jordan)
    assert set(own) == {("JOR", "border_management"), ("JOR", "counter_financing")}
    assert not _flagged(own, "gap") and not _flagged(own, "overlap")


async def test_the_activities_answer_their_states_needs_with_iso_currencies(
    demo_app: FastAPI,
) -> None:
    async with _signed_in(demo_app, "analyst") as analyst:
        listed = await analyst.get("/api/v1/activities", params={"limit": 100})
        needs = await analyst.get("/api/v1/needs", params={"limit": 200})
    assert listed.status_code == 200 and needs.status_code == 200, listed.text + needs.text
    items = listed.json()["items"]
    need_states = {need["id"]: need["state"]["code"] for need in needs.json()["items"]}
    assert len(items) == EXPECTED["activities"]
    assert {item["lead"]["code"] for item in items} >= {
        "UNODC",
        "INTERPOL",
        "IOM",
        "ICAO",
        "UNOCT",
    }
    for item in items:
        assert all(need_states[need] == item["state"]["code"] for need in item["need_ids"])
        assert pycountry.currencies.get(alpha_3=item["currency"]) is not None
        assert item["budget"] is not None
        assert bool(item["outputs"]) is (item["status"] == "completed")
    # Accepting an offer planned an activity; its lead's focal point filled in the rest.
    from_offers = {i["state"]["code"]: i for i in items if i["offer_id"] is not None}
    assert set(from_offers) == {"KEN", "IDN"}
    kenya = from_offers["KEN"]
    assert kenya["lead"]["code"] == "IOM" and kenya["version"] == 2
    assert [p["code"] for p in kenya["partners"]] == ["ICAO"]
    assert len(kenya["need_ids"]) == 2 and len(kenya["measure_ids"]) == 1
    assert sum(len(item["measure_ids"]) for item in items) == EXPECTED["activity measures"]
    completed = [i for i in items if i["status"] == "completed"]
    assert {i["lead"]["code"] for i in completed} == {"ICAO", "UNOCT"}
    assert {"Drafters and prosecutors trained", "Officials trained"} <= {
        output["name"] for item in completed for output in item["outputs"]
    }


async def test_status_changes_are_audited_with_before_and_after(demo_run: DemoRun) -> None:
    database = Database(demo_run.url)
    try:
        async with database.sessionmaker() as session:
            rows = (
                await session.exec(
                    select(AuditEvent, User.email)
                    .join(User, col(User.id) == col(AuditEvent.actor_user_id))
                    .where(col(AuditEvent.action) == "activity.update")
                )
            ).all()
    finally:
        await database.dispose()
    updates = [(email.split("@")[0], json.loads(event.details)) for event, email in rows]
    moves = {(who, details["status"]["after"]) for who, details in updates if "status" in details}
    assert moves == {("analyst", "cancelled"), ("analyst", "completed")}
    completed = next(d for _, d in updates if d.get("status", {}).get("after") == "completed")
    assert completed["status"]["before"] == "ongoing" and completed["version"] == 2
    assert completed["outputs"]["before"] == []
    assert {o["name"] for o in completed["outputs"]["after"]} == {
        "Draft amendments submitted to Parliament",
        "Drafters and prosecutors trained",
    }
    # The two plans of accepted offers, filled in by IOM's and UNODC's focal points.
    assert {who for who, details in updates if "partners" in details} == {
        "focal.iom",
        "focal.unodc",
    }


async def test_a_demo_loaded_before_joint_planning_gets_its_activities_and_nothing_else(
    fresh_database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A demo database loaded before activities existed (its offers accepted without a
    plan) gets the plans of its accepted offers and the demo's activities, written by its
    own accounts, on the next `ctcp demo`; a third run adds nothing."""
    database = Database(fresh_database_url)
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )

    async def load() -> demo_service.DemoSummary | None:
        async with database.transaction() as session:
            return await demo_service.load_demo(
                session, password=DEMO_PASSWORD, hasher=hasher, context=AuditContext()
            )

    async def nothing(*args: Any) -> None:
        pass

    try:
        async with database.transaction() as session:
            await organizations.load_reference_data(session, context=AuditContext())
        with monkeypatch.context() as patched:
            patched.setattr(demo_service, "_activities", nothing)
            patched.setattr(planning, "plan_from_offer", nothing)
            assert await load() is not None
        before = await table_counts(fresh_database_url, TABLES)
        assert before["activities"] == 0
        async with database.sessionmaker() as session:
            last_event = (await session.exec(select(func.max(AuditEvent.id)))).one()
        topped_up = await load()
        assert topped_up is not None
        assert topped_up.counts == {
            "activities": 14,
            "  cancelled activities": 1,
            "  completed activities": 2,
            "  ongoing activities": 6,
            "  planned activities": 5,
            "activity partners": 10,
            "activity needs": 13,
            "activity measures": 5,
        }
        after = await table_counts(fresh_database_url, TABLES)
        assert await load() is None
        assert await table_counts(fresh_database_url, TABLES) == after
        async with database.sessionmaker() as session:
            planned = (
                await session.exec(
                    select(User.email)
                    .join(Activity, col(Activity.created_by) == col(User.id))
                    .where(col(Activity.offer_id).is_not(None))
                )
            ).all()
            actions = Counter(
                (
                    await session.exec(
                        select(AuditEvent.action).where(col(AuditEvent.id) > last_event)
                    )
                ).all()
            )
    finally:
        await database.dispose()
    added = {name: after[name] - before[name] for name in TABLES}
    assert added == {
        **dict.fromkeys(TABLES, 0),
        "activities": 14,
        "activity partners": 10,
        "activity needs": 13,
        "activity measures": 5,
        "audit events": added["audit events"],
    }
    # Each plan made as the focal point who accepted the offer, as accepting does today.
    assert sorted(planned) == [
        f"focal.{state}@{content.DEMO_DOMAIN}" for state in ("indonesia", "kenya")
    ]
    # Fourteen records (two from offers), two filled-in plans, two status changes.
    assert actions == {"activity.create": 14, "activity.update": 4}
