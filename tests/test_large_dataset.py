"""`ctcp demo --scale small`: the bulk data set, at 1/100 of the large one, on both backends."""

import asyncio
import csv
import io
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import phonenumbers
import pycountry
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.app import create_app
from ctcp.assistance.models import (
    AssistanceRequest,
    AssistanceRequestNeed,
    Need,
    Offer,
    RequestTransition,
)
from ctcp.audit import service as audit
from ctcp.audit.models import AuditEvent
from ctcp.consent import needs_sharing
from ctcp.consent import service as consent
from ctcp.consent.models import ConsentEvent, Publication, PublicationSection
from ctcp.contacts.models import ContactPoint, ContactPointVersion
from ctcp.contacts.schemas import STALE_AFTER_DAYS, ContactPointContent
from ctcp.contacts.service import CONTENT_FIELDS
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.models import User, UserRole
from ctcp.identity.roles import role_fits
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity, ActivityNeed, ActivityPartner
from ctcp.planning.schemas import iso_4217_codes
from ctcp.reports.models import Recommendation, ReportSection, VisitReport
from ctcp_demo.content import DEMO_PASSWORD
from ctcp_demo.large import CONTACT_STATES, MARKER_EMAIL, SCALES
from tests.conftest import database_like
from tests.factories import make_user, new_client, run_ctcp, sign_in, table_counts

SMALL = SCALES["small"]
TABLES: dict[str, type[SQLModel]] = {
    "users": User,
    "report versions": VisitReport,
    "sections": ReportSection,
    "recommendations": Recommendation,
    "consent events": ConsentEvent,
    "publications": Publication,
    "publication sections": PublicationSection,
    "needs": Need,
    "requests": AssistanceRequest,
    "request needs": AssistanceRequestNeed,
    "transitions": RequestTransition,
    "offers": Offer,
    "activities": Activity,
    "activity partners": ActivityPartner,
    "activity needs": ActivityNeed,
    "contact points": ContactPoint,
    "contact-point versions": ContactPointVersion,
    "audit events": AuditEvent,
}


@dataclass
class Built:
    url: str
    refused: tuple[int, str]
    first: tuple[int, str]
    second: tuple[int, str]
    chain_before: int
    after_first: dict[str, int]
    after_second: dict[str, int]


async def _chain_length(url: str) -> int:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return await audit.chain_length(session)
    finally:
        await database.dispose()


async def _add_a_focal_point(url: str) -> None:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            france = (
                await session.exec(select(Organization).where(col(Organization.code) == "FRA"))
            ).one()
        await make_user(database, org=france, roles=("state_focal_point",))
    finally:
        await database.dispose()


async def _remove_users(url: str) -> None:
    database = Database(url)
    try:
        async with database.transaction() as session:
            await session.exec(delete(UserRole))
            await session.exec(delete(User))
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def built(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Refused while another user is there; then built, and asked to build again."""
    directory = tmp_path_factory.mktemp("large")
    with database_like(database_url, directory / "large.db") as url:
        env = {
            "CTCP_DATABASE_URL": url,
            "CTCP_VAR_DIR": str(directory),
            "CTCP_ENVIRONMENT": "development",
        }
        assert run_ctcp(env, "load-reference-data")[0] == 0
        asyncio.run(_add_a_focal_point(url))
        refused = run_ctcp(env, "demo", "--scale", "small")
        asyncio.run(_remove_users(url))
        chain_before = asyncio.run(_chain_length(url))
        first = run_ctcp(env, "demo", "--scale", "small")
        after_first = asyncio.run(table_counts(url, TABLES))
        second = run_ctcp(env, "demo", "--scale", "small")
        after_second = asyncio.run(table_counts(url, TABLES))
        yield Built(url, refused, first, second, chain_before, after_first, after_second)


def test_a_database_with_other_data_is_refused(built: Built) -> None:
    code, output = built.refused
    assert code == 2 and "other data" in output and "1 users" in output


def test_counts_follow_the_scale(built: Built) -> None:
    code, output = built.first
    assert code == 0, output
    counts = built.after_first
    assert counts["users"] == SMALL.users
    assert counts["report versions"] == SMALL.reports
    assert counts["sections"] == 8 * SMALL.reports
    assert counts["recommendations"] >= counts["sections"]
    assert counts["needs"] == SMALL.needs
    assert counts["requests"] == SMALL.requests
    assert counts["request needs"] >= SMALL.requests
    assert counts["offers"] > SMALL.requests // 2
    assert counts["activities"] == SMALL.activities
    # Some with partners and some linked to needs, not all.
    assert 0 < counts["activity partners"] < counts["activities"]
    assert 0 < counts["activity needs"] < counts["activities"]
    assert counts["audit events"] == built.chain_before + SMALL.audit_events
    assert MARKER_EMAIL in output and DEMO_PASSWORD in output
    assert re.search(rf"\bcontact points\W+{counts['contact points']}\b", output), output
    assert re.search(r"States with contact points\W+59\b", output), output
    assert re.search(rf"\bactivities\W+{SMALL.activities}\b", output), output


async def test_roles_fit_organizations_and_statuses_spread(built: Built) -> None:
    database = Database(built.url)
    try:
        async with database.sessionmaker() as session:
            roles = (
                await session.exec(
                    select(UserRole.role, Organization.kind)
                    .join(User, col(User.id) == col(UserRole.user_id))
                    .join(Organization, col(Organization.id) == col(User.organization_id))
                )
            ).all()
            statuses = (await session.exec(select(AssistanceRequest.status))).all()
            offer_statuses = (await session.exec(select(Offer.status))).all()
            adopted = (
                await session.exec(
                    select(VisitReport.id).where(col(VisitReport.status) == "adopted")
                )
            ).all()
            latest = await _latest_events(session)
    finally:
        await database.dispose()
    assert len(roles) == SMALL.users
    assert all(role_fits(role, kind) for role, kind in roles)
    assert {role for role, _ in roles} == {
        "platform_admin",
        "auditor",
        "consent_officer",
        "cted_analyst",
        "entity_focal_point",
        "state_focal_point",
    }
    assert len(set(statuses)) >= 6
    assert {"pending", "accepted", "not_selected"} <= set(offer_statuses)
    # A third full, a third partial, a third none or withdrawn (or never decided).
    kinds = Counter(
        latest[report_id].scope if report_id in latest else "none" for report_id in adopted
    )
    third = len(adopted) / 3
    assert all(abs(kinds[scope] - third) <= 1 for scope in ("full", "partial", "none"))
    assert any(event.withdrawal for event in latest.values())


async def _latest_events(session: AsyncSession) -> dict[uuid.UUID, ConsentEvent]:
    """Each report's current consent event (the one with the highest sequence)."""
    events = (await session.exec(select(ConsentEvent).order_by(col(ConsentEvent.sequence)))).all()
    return {event.report_id: event for event in events}


def test_the_audit_chain_verifies(built: Built, tmp_path: Path) -> None:
    env = {"CTCP_DATABASE_URL": built.url, "CTCP_VAR_DIR": str(tmp_path)}
    code, output = run_ctcp(env, "audit", "verify")
    assert code == 0 and "intact" in output, output
    length = asyncio.run(_chain_length(built.url))  # other tests may have added events
    assert f"{length:,} events" in output or f"{length} events" in output, output


async def test_publications_hold_exactly_what_their_consent_allows(built: Built) -> None:
    database = Database(built.url)
    try:
        async with database.sessionmaker() as session:
            latest = await _latest_events(session)
            events = {e.id: e for e in (await session.exec(select(ConsentEvent))).all()}
            publications = (await session.exec(select(Publication))).all()
            live = set(
                (await session.exec(select(Publication.id).where(consent.live(clock.now())))).all()
            )
            sections: dict[uuid.UUID, list[ReportSection]] = {}
            for section in (await session.exec(select(ReportSection))).all():
                sections.setdefault(section.report_id, []).append(section)
            published: dict[uuid.UUID, list[PublicationSection]] = {}
            for item in (await session.exec(select(PublicationSection))).all():
                published.setdefault(item.publication_id, []).append(item)
    finally:
        await database.dispose()
    live_reports: Counter[uuid.UUID] = Counter()
    for publication in publications:
        event = events[publication.consent_event_id]
        assert event.report_id == publication.report_id
        assert publication.audience == event.audience
        expected = consent.publication_sections(
            sections[publication.report_id], event.scope, event.section_ids
        )
        held = sorted(published[publication.id], key=lambda s: s.position)
        assert [(s.section_id, s.body) for s in held] == [(s.id, s.body) for s in expected]
        if publication.id in live:
            # A live publication is the one its report's current consent made.
            assert latest[publication.report_id].id == event.id
            live_reports[publication.report_id] += 1
        else:
            assert publication.revoked_at is not None
    assert live and all(number == 1 for number in live_reports.values())
    for report_id, event in latest.items():
        if event.scope == "none":
            assert report_id not in live_reports  # withdrawn or refused: nothing live
        else:
            assert live_reports[report_id] == 1


@pytest.fixture
async def built_app(built: Built, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"database_url": built.url}))
    async with application.router.lifespan_context(application):
        yield application


async def test_a_generated_state_focal_point_reads_only_its_states_reports(
    built: Built, built_app: FastAPI
) -> None:
    database = Database(built.url)
    try:
        async with database.sessionmaker() as session:
            email, state_id, code = (
                await session.exec(
                    select(User.email, Organization.id, Organization.code)
                    .join(UserRole, col(UserRole.user_id) == col(User.id))
                    .join(Organization, col(Organization.id) == col(User.organization_id))
                    .join(VisitReport, col(VisitReport.state_id) == col(Organization.id))
                    .where(col(UserRole.role) == "state_focal_point")
                    .order_by(col(User.email))
                    .limit(1)
                )
            ).one()
            own = set(
                (
                    await session.exec(
                        select(VisitReport.id).where(col(VisitReport.state_id) == state_id)
                    )
                ).all()
            )
            other = (
                await session.exec(
                    select(VisitReport.id).where(col(VisitReport.state_id) != state_id).limit(1)
                )
            ).one()
    finally:
        await database.dispose()
    async with new_client(built_app) as client:
        await sign_in(client, email, DEMO_PASSWORD)
        response = await client.get("/api/v1/reports", params={"limit": 100})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert {item["state"]["code"] for item in items} == {code}
        assert {item["id"] for item in items} == {str(report_id) for report_id in own}
        assert (await client.get(f"/api/v1/reports/{other}")).status_code == 404


async def _directory(url: str) -> tuple[list[ContactPoint], list[ContactPointVersion], dict]:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            entries = list((await session.exec(select(ContactPoint))).all())
            versions = list(
                (
                    await session.exec(
                        select(ContactPointVersion).order_by(
                            col(ContactPointVersion.at), col(ContactPointVersion.version)
                        )
                    )
                ).all()
            )
            actions = Counter(
                (
                    await session.exec(
                        select(AuditEvent.action).where(
                            col(AuditEvent.object_type) == "contact",
                            col(AuditEvent.outcome) == "allowed",
                        )
                    )
                ).all()
            )
            states = {o.id: o for o in (await session.exec(select(Organization))).all()}
    finally:
        await database.dispose()
    return entries, versions, {"actions": actions, "states": states}


async def test_the_directory_holds_59_states_with_several_kinds_each(built: Built) -> None:
    """The figure of S/2017/1065: 59 States' authorities, an asset-freeze one each."""
    entries, _, found = await _directory(built.url)
    states = found["states"]
    assert CONTACT_STATES == 59
    by_state: dict[uuid.UUID, set[str]] = {}
    for entry in entries:
        by_state.setdefault(entry.state_id, set()).add(entry.kind)
    assert len(by_state) == 59
    assert all(states[state_id].kind == "member_state" for state_id in by_state)
    assert all("asset_freeze" in kinds and len(kinds) >= 3 for kinds in by_state.values())
    assert 5 * 59 <= len(entries) <= 8 * 59
    assert {e.audience for e in entries} == {"secretariat", "compact", "member_states"}
    cutoff = clock.now() - timedelta(days=STALE_AFTER_DAYS)
    stale = [e for e in entries if e.confirmed_at < cutoff]
    assert 0.05 * len(entries) < len(stale) < 0.4 * len(entries)
    assert sum(1 for e in entries if "fr" in e.languages.split(",")) >= 30
    for entry in entries:
        # Every entry passes the checks the API makes, and its numbers are its country's.
        content = {name: getattr(entry, name) for name in CONTENT_FIELDS}
        ContactPointContent.model_validate({**content, "languages": entry.languages.split(",")})
        country = pycountry.countries.get(alpha_3=states[entry.state_id].code)
        assert country is not None and entry.phone is not None
        assert phonenumbers.region_code_for_number(phonenumbers.parse(entry.phone)) == (
            country.alpha_2
        )


async def test_each_entry_has_the_versions_and_audit_events_the_service_writes(
    built: Built,
) -> None:
    entries, versions, found = await _directory(built.url)
    by_entry: dict[uuid.UUID, list[ContactPointVersion]] = {}
    for version in versions:
        by_entry.setdefault(version.contact_point_id, []).append(version)
    changes = Counter(version.change for version in versions)
    assert set(by_entry) == {entry.id for entry in entries}
    assert changes["created"] == len(entries) and changes["updated"] and changes["confirmed"]
    for entry in entries:
        history = by_entry[entry.id]
        assert history[0].change == "created" and history[0].version == 1
        assert history[0].at == entry.created_at
        # The last version holds the entry as it is; versions count only content changes.
        assert (
            history[-1].version
            == entry.version
            == 1 + sum(1 for v in history if v.change == "updated")
        )
        snapshot = {name: getattr(entry, name) for name in CONTENT_FIELDS}
        snapshot["languages"] = entry.languages.split(",")
        assert history[-1].snapshot == {"state": found["states"][entry.state_id].code, **snapshot}
        confirmations = [v.at for v in history if v.change != "updated"]
        assert entry.confirmed_at == max(confirmations)
    actions = found["actions"]
    assert actions["contact.create"] == changes["created"]
    assert actions["contact.update"] == changes["updated"]
    assert actions["contact.confirm"] == changes["confirmed"]
    assert actions["contact.read"] > 0


def _exported_ids(text: str) -> set[str]:
    return {row["id"] for row in csv.DictReader(io.StringIO(text))}


async def test_generated_focal_points_read_the_directory_by_its_rules(
    built: Built, built_app: FastAPI
) -> None:
    entries, _, found = await _directory(built.url)
    states = found["states"]
    database = Database(built.url)
    try:
        async with database.sessionmaker() as session:
            state_email, state_id = (
                await session.exec(
                    select(User.email, User.organization_id)
                    .join(UserRole, col(UserRole.user_id) == col(User.id))
                    .where(
                        col(UserRole.role) == "state_focal_point",
                        col(User.organization_id).in_({e.state_id for e in entries}),
                    )
                    .order_by(col(User.email))
                    .limit(1)
                )
            ).one()
            entity_email = (
                await session.exec(
                    select(User.email)
                    .join(UserRole, col(UserRole.user_id) == col(User.id))
                    .join(Organization, col(Organization.id) == col(User.organization_id))
                    .where(
                        col(UserRole.role) == "entity_focal_point",
                        col(Organization.kind) == "compact_entity",
                    )
                    .order_by(col(User.email))
                    .limit(1)
                )
            ).one()
    finally:
        await database.dispose()
    code = states[state_id].code
    own = {str(e.id) for e in entries if e.state_id == state_id}
    others = {
        str(e.id) for e in entries if e.state_id != state_id and e.audience == "member_states"
    }
    for_entities = {str(e.id) for e in entries if e.audience in ("compact", "member_states")}
    async with new_client(built_app) as client:
        await sign_in(client, state_email, DEMO_PASSWORD)
        response = await client.get("/api/v1/contact-points", params={"state": code})
        assert response.status_code == 200, response.text
        assert {item["id"] for item in response.json()["items"]} == own
        exported = await client.get("/api/v1/contact-points/export", params={"format": "csv"})
        assert exported.status_code == 200, exported.text
        assert _exported_ids(exported.text) == own | others
    async with new_client(built_app) as client:
        await sign_in(client, entity_email, DEMO_PASSWORD)
        exported = await client.get("/api/v1/contact-points/export", params={"format": "csv"})
        assert exported.status_code == 200, exported.text
        assert _exported_ids(exported.text) == for_entities


@dataclass
class _Planning:
    """The built activities and what they hang on, read once."""

    activities: list[Activity]
    partners: dict[uuid.UUID, set[uuid.UUID]]
    needs: dict[uuid.UUID, set[uuid.UUID]]
    need_states: dict[uuid.UUID, uuid.UUID]
    organizations: dict[uuid.UUID, Organization]
    offers: dict[uuid.UUID, Offer]
    requests: dict[uuid.UUID, AssistanceRequest]
    request_needs: dict[uuid.UUID, set[uuid.UUID]]
    actions: Counter[str]


async def _planning(url: str) -> _Planning:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            activities = list((await session.exec(select(Activity))).all())
            partners: dict[uuid.UUID, set[uuid.UUID]] = {}
            for link in (await session.exec(select(ActivityPartner))).all():
                partners.setdefault(link.activity_id, set()).add(link.organization_id)
            needs: dict[uuid.UUID, set[uuid.UUID]] = {}
            for tie in (await session.exec(select(ActivityNeed))).all():
                needs.setdefault(tie.activity_id, set()).add(tie.need_id)
            need_states = dict((await session.exec(select(Need.id, Need.state_id))).all())
            organizations = {o.id: o for o in (await session.exec(select(Organization))).all()}
            offers = {o.id: o for o in (await session.exec(select(Offer))).all()}
            requests = {r.id: r for r in (await session.exec(select(AssistanceRequest))).all()}
            request_needs: dict[uuid.UUID, set[uuid.UUID]] = {}
            for row in (await session.exec(select(AssistanceRequestNeed))).all():
                request_needs.setdefault(row.request_id, set()).add(row.need_id)
            actions = Counter(
                (
                    await session.exec(
                        select(AuditEvent.action).where(
                            col(AuditEvent.object_type) == "activity",
                            col(AuditEvent.outcome) == "allowed",
                        )
                    )
                ).all()
            )
    finally:
        await database.dispose()
    return _Planning(
        activities,
        partners,
        needs,
        need_states,
        organizations,
        offers,
        requests,
        request_needs,
        actions,
    )


async def test_activities_spread_over_states_areas_statuses_and_years(built: Built) -> None:
    found = await _planning(built.url)
    activities, organizations = found.activities, found.organizations
    assert len(activities) == SMALL.activities
    assert {a.status for a in activities} == {"planned", "ongoing", "completed", "cancelled"}
    assert len({a.area for a in activities}) == 8
    assert len({a.state_id for a in activities}) >= 40
    assert len({a.lead_id for a in activities}) >= 15
    starts = [a.starts_on for a in activities if a.offer_id is None]
    assert min(starts) >= date(2019, 1, 1) and max(starts) <= date(2028, 12, 31)
    assert len({day.year for day in starts}) == 10  # 2019 to 2028
    for activity in activities:
        lead = organizations[activity.lead_id]
        assert organizations[activity.state_id].kind == "member_state"
        assert lead.kind in ("compact_entity", "secretariat") and lead.code != "CTED"
        assert activity.ends_on is None or activity.starts_on <= activity.ends_on
        assert activity.ends_on is None or activity.ends_on <= date(2028, 12, 31)
        # Outputs belong to completed work; a budget goes with an ISO 4217 currency.
        assert bool(activity.outputs) is (activity.status == "completed")
        assert (activity.budget is None) == (activity.currency is None)
        assert activity.currency is None or activity.currency in iso_4217_codes()
        assert activity.created_at <= activity.updated_at and activity.version >= 1
        for partner in found.partners.get(activity.id, ()):
            assert partner != activity.lead_id
            assert organizations[partner].kind in ("compact_entity", "secretariat")
        # The needs it answers are its State's.
        for need in found.needs.get(activity.id, ()):
            assert found.need_states[need] == activity.state_id


async def test_every_accepted_offer_planned_one_activity(built: Built) -> None:
    """As accepting does: the offering entity leads, in the request's State, answering the
    request's needs, from the moment of the acceptance."""
    found = await _planning(built.url)
    accepted = {o.id: o for o in found.offers.values() if o.status == "accepted"}
    from_offers = {a.offer_id: a for a in found.activities if a.offer_id is not None}
    assert accepted and set(from_offers) == set(accepted)
    for offer_id, activity in from_offers.items():
        offer = accepted[offer_id]
        filed = found.requests[offer.request_id]
        assert activity.lead_id == offer.organization_id
        assert activity.state_id == filed.state_id
        assert activity.created_at == offer.decided_at
        assert activity.starts_on == activity.created_at.date()
        assert found.needs[activity.id] == found.request_needs[filed.id]
        # The offer's budget becomes the activity's only when its lead fills it in.
        assert activity.budget is None or (activity.budget, activity.currency) == (
            offer.budget,
            offer.currency,
        )
    moved = {
        "in_progress": {"ongoing", "completed"},
        "completed": {"completed"},
        "withdrawn": {"cancelled"},
        "matched": {"planned"},
    }
    for offer_id, activity in from_offers.items():
        status = found.requests[accepted[offer_id].request_id].status
        assert activity.status in moved[status], (status, activity.status)


async def test_each_activity_has_the_audit_events_the_service_writes(built: Built) -> None:
    found = await _planning(built.url)
    assert found.actions["activity.create"] == len(found.activities)
    assert found.actions["activity.update"] == sum(a.version - 1 for a in found.activities)
    assert found.actions["activity.update"] > 0 and found.actions["activity.read"] > 0


async def _busiest_entity(url: str) -> tuple[str, uuid.UUID]:
    """A focal point of the entity leading the most activities, and the entity."""
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            email, entity_id = (
                await session.exec(
                    select(User.email, User.organization_id)
                    .join(UserRole, col(UserRole.user_id) == col(User.id))
                    .join(Activity, col(Activity.lead_id) == col(User.organization_id))
                    .where(col(UserRole.role) == "entity_focal_point")
                    .group_by(col(User.email), col(User.organization_id))
                    .order_by(func.count().desc(), col(User.email))
                    .limit(1)
                )
            ).one()
    finally:
        await database.dispose()
    return email, entity_id


async def test_an_entity_gets_matrix_cells_only_for_states_that_share(
    built: Built, built_app: FastAPI
) -> None:
    found = await _planning(built.url)
    email, entity_id = await _busiest_entity(built.url)
    database = Database(built.url)
    try:
        async with database.sessionmaker() as session:
            sharing = set(
                (
                    await session.exec(
                        select(Organization.code).where(
                            col(Organization.id).in_(needs_sharing.sharing_states(clock.now()))
                        )
                    )
                ).all()
            )
    finally:
        await database.dispose()
    codes = {o.id: o.code for o in found.organizations.values()}
    own_elsewhere = {
        codes[a.state_id]
        for a in found.activities
        if a.lead_id == entity_id and codes[a.state_id] not in sharing
    }
    assert own_elsewhere, "the entity should lead work in a State that does not share"
    async with new_client(built_app) as client:
        await sign_in(client, email, DEMO_PASSWORD)
        response = await client.get("/api/v1/coordination/matrix")
        assert response.status_code == 200, response.text
        cells = response.json()["cells"]
    shown = {cell["state"] for cell in cells}
    assert shown and shown <= sharing
    assert not shown & own_elsewhere  # not even its own work there
    assert any(cell["gap"] for cell in cells) and any(cell["overlap"] for cell in cells)
    async with new_client(built_app) as client:
        analyst = await _an_analyst(built.url)
        await sign_in(client, analyst, DEMO_PASSWORD)
        response = await client.get("/api/v1/coordination/matrix")
        assert response.status_code == 200, response.text
        every = response.json()["cells"]
    assert sum(cell["activities"]["total"] for cell in every) == len(found.activities)
    assert {cell["state"] for cell in every} > shown


async def _an_analyst(url: str) -> str:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return (
                await session.exec(
                    select(User.email)
                    .join(UserRole, col(UserRole.user_id) == col(User.id))
                    .where(col(UserRole.role) == "cted_analyst")
                    .order_by(col(User.email))
                    .limit(1)
                )
            ).one()
    finally:
        await database.dispose()


def test_a_second_run_adds_nothing(built: Built) -> None:
    code, output = built.second
    assert code == 0, output
    assert "already present" in output
    assert built.after_second == built.after_first


def test_production_is_refused_without_force(tmp_path: Path) -> None:
    env = {
        "CTCP_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}",
        "CTCP_ENVIRONMENT": "production",
        "CTCP_SECRET_KEY": "a-production-secret-of-enough-length-0123456789",
    }
    code, output = run_ctcp(env, "demo", "--scale", "small")
    assert code == 2 and "production" in output
    assert not (tmp_path / "absent.db").exists()
