"""kill -9 of the worker in the middle of writes: after a restart, nothing is half there.

Reports with their sections, consent decisions with their publications, assistance
requests with their needs, offers with their notifications: each is written with its
audit event in one transaction, so a SIGKILL at any instant leaves either all of it or
none of it, every answered 201 is still there, and the audit chain verifies.
"""

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import col, select

from ctcp.assistance.models import (
    AssistanceRequest,
    AssistanceRequestNeed,
    Offer,
    RequestStatus,
    RequestTransition,
)
from ctcp.audit.models import AuditEvent
from ctcp.audit.service import verify_chain
from ctcp.consent.models import ConsentEvent, Publication, PublicationSection
from ctcp.core.db import Database
from ctcp.notifications.models import Notification
from ctcp.reports.models import Recommendation, ReportSection, ThematicArea, VisitReport
from tests.factories import decide, make_org, make_user
from tests.faults.conftest import live_client, live_sign_in
from tests.servers import AppServer

AREAS = [area.value for area in ThematicArea]  # eight: a report has one section of each
MIN_WRITES_BEFORE_KILL = 40


def _report_body(state: str, title: str) -> dict[str, Any]:
    return {
        "state": state,
        "title": title,
        "kind": "comprehensive",
        "visit_start": "2026-05-04",
        "visit_end": "2026-05-08",
        "sections": [
            {
                "area": area,
                "title": area.replace("_", " ").title(),
                "body": f"Findings on {area}. " * 20,
                "recommendations": [{"text": f"Strengthen {area}.", "priority": "high"}],
            }
            for area in AREAS
        ],
    }


@dataclass
class Load:
    """What the server answered before it died."""

    created: dict[str, list[str]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    writes: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def answered(self, kind: str, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 201:
            self.created.setdefault(kind, []).append(response.json()["id"])
            self.writes += 1
            if self.writes >= MIN_WRITES_BEFORE_KILL:
                self.enough.set()


async def _until_dead(load: Load, kind: str, send: Callable[[], Awaitable[httpx.Response]]) -> None:
    """Send writes one after another until the server stops answering."""
    while True:
        try:
            response = await send()
        except httpx.TransportError:
            return
        load.answered(kind, response)


async def _drive_and_kill(
    server: AppServer, clients: dict[str, httpx.AsyncClient], world: Any
) -> Load:
    load = Load()
    analyst, officer, entity, focal_point = (
        clients[name] for name in ("analyst", "officer", "entity", "state")
    )
    rng = random.Random(8)

    def new_report() -> Awaitable[httpx.Response]:
        return analyst.post("/api/v1/reports", json=_report_body(world["state"], "Killed"))

    def consent() -> Awaitable[httpx.Response]:
        report = rng.choice(world["adopted"])
        choice = rng.randrange(3)
        if choice == 2:
            return officer.post(
                f"/api/v1/reports/{report['id']}/consent/withdraw", json={"reason": "Paused."}
            )
        sections = [] if choice == 0 else [s["id"] for s in report["sections"][:3]]
        return decide(
            officer,
            f"/api/v1/reports/{report['id']}/consent",
            {
                "scope": "full" if choice == 0 else "partial",
                "sections": sections,
                "audience": "compact",
                "reference": "NV/2026/99",
            },
        )

    def offer() -> Awaitable[httpx.Response]:
        return entity.post(
            f"/api/v1/assistance-requests/{rng.choice(world['circulated'])}/offers",
            json={
                "programme": "Countering Terrorist Travel",
                "description": "API/PNR systems and training.",
                "timeline": "2027 Q1 - 2027 Q4",
            },
        )

    def file_request() -> Awaitable[httpx.Response]:
        return focal_point.post(
            "/api/v1/assistance-requests",
            json={
                "title": "Support",
                "description": "Border management.",
                "need_ids": world["needs"],
            },
        )

    writers = [
        asyncio.create_task(_until_dead(load, kind, send))
        for kind, send in (
            ("report", new_report),
            ("report", new_report),
            ("consent", consent),
            ("consent", consent),
            ("offer", offer),
            ("request", file_request),
        )
    ]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            await load.enough.wait()
    # Six writes are in flight at any instant: the kill lands in the middle of some.
    await asyncio.sleep(rng.uniform(0.0, 0.05))
    server.kill()
    await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
    assert load.writes >= MIN_WRITES_BEFORE_KILL, (load.statuses, server.log()[-2000:])
    return load


async def _prepare_world(clients: dict[str, httpx.AsyncClient], state: str) -> dict[str, Any]:
    """Adopted reports to decide consent on, and circulated requests to offer on."""
    analyst, officer = clients["analyst"], clients["officer"]
    adopted = []
    for index in range(4):
        created = await analyst.post(
            "/api/v1/reports", json=_report_body(state, f"Adopted {index}")
        )
        assert created.status_code == 201, created.text
        report = created.json()
        assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
        adopted.append(report)
    shared = await decide(
        officer, f"/api/v1/states/{state}/needs-consent", {"share_needs": True, "reference": "NV/1"}
    )
    assert shared.status_code == 201, shared.text
    needs = []
    for area in ("border_management", "counter_financing"):
        need = await analyst.post(
            "/api/v1/needs",
            json={
                "state": state,
                "area": area,
                "description": "Passenger data systems.",
                "priority": "high",
                "source": "state_request",
            },
        )
        assert need.status_code == 201, need.text
        needs.append(need.json()["id"])
    circulated = []
    for _ in range(2):
        filed = await clients["state"].post(
            "/api/v1/assistance-requests",
            json={"title": "Support", "description": "Borders.", "need_ids": needs},
        )
        assert filed.status_code == 201, filed.text
        for to in ("under_review", "circulated"):
            moved = await analyst.post(
                f"/api/v1/assistance-requests/{filed.json()['id']}/transition", json={"to": to}
            )
            assert moved.status_code == 200, moved.text
        circulated.append(filed.json()["id"])
    return {"state": state, "adopted": adopted, "needs": needs, "circulated": circulated}


def _audited(events: list[AuditEvent], action: str) -> Counter[str]:
    return Counter(event.object_id or "" for event in events if event.action == action)


async def _assert_consistent(database: Database, load: Load) -> None:
    async with database.read_sessionmaker() as session:
        reports = (await session.exec(select(VisitReport))).all()
        sections = (await session.exec(select(ReportSection))).all()
        recommendations = (await session.exec(select(Recommendation))).all()
        consents = (await session.exec(select(ConsentEvent))).all()
        publications = (await session.exec(select(Publication))).all()
        published_sections = (await session.exec(select(PublicationSection))).all()
        requests = (await session.exec(select(AssistanceRequest))).all()
        request_needs = (await session.exec(select(AssistanceRequestNeed))).all()
        transitions = (await session.exec(select(RequestTransition))).all()
        offers = (await session.exec(select(Offer))).all()
        notifications = (
            await session.exec(
                select(Notification).where(col(Notification.event) == "offer.received")
            )
        ).all()
        events = list(
            (
                await session.exec(select(AuditEvent).where(col(AuditEvent.outcome) == "allowed"))
            ).all()
        )
        verdict = await verify_chain(session)
    assert verdict.valid, verdict

    # Every answered 201 survived the kill.
    for kind, rows in (
        ("report", reports),
        ("consent", consents),
        ("offer", offers),
        ("request", requests),
    ):
        kept = {str(row.id) for row in rows}
        assert set(load.created.get(kind, [])) <= kept, kind

    # No partial report: eight sections, each with its recommendation, and its audit event.
    per_report = Counter(str(section.report_id) for section in sections)
    per_section = Counter(str(item.section_id) for item in recommendations)
    assert {str(r.id): per_report[str(r.id)] for r in reports} == {str(r.id): 8 for r in reports}
    assert all(per_section[str(section.id)] == 1 for section in sections)
    created = _audited(events, "report.create")
    assert created == Counter({str(report.id): 1 for report in reports})

    # Every consent decision has its event, and every consent event its decision.
    audited_decisions: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.action in ("consent.record", "consent.withdraw"):
            details = json.loads(event.details)
            audited_decisions[details["after"]["id"]] = details
    assert set(audited_decisions) == {str(c.id) for c in consents}

    # No publication without its consent decision: the decision that made it names it,
    # it carries that decision's sections, and only a report's latest decision is live.
    by_id = {str(c.id): c for c in consents}
    sections_of = Counter(str(item.publication_id) for item in published_sections)
    latest: dict[str, ConsentEvent] = {}
    for consent in consents:
        key = str(consent.report_id)
        if key not in latest or consent.sequence > latest[key].sequence:
            latest[key] = consent
    for publication in publications:
        decision = by_id[str(publication.consent_event_id)]
        assert not decision.withdrawal and decision.report_id == publication.report_id
        assert audited_decisions[str(decision.id)]["publication"] == str(publication.id)
        expected = 8 if decision.scope == "full" else len(decision.section_ids)
        assert sections_of[str(publication.id)] == expected
        if publication.revoked_at is None:
            assert latest[str(publication.report_id)].id == decision.id
    live = Counter(str(p.report_id) for p in publications if p.revoked_at is None)
    assert all(count <= 1 for count in live.values()), live

    # Every request with both its needs and its first transition; every offer with its
    # notification to the State's focal point, on a circulated request; all audited.
    needs_of = Counter(str(row.request_id) for row in request_needs)
    submitted = Counter(str(row.request_id) for row in transitions if row.to_status == "submitted")
    assert all(needs_of[str(r.id)] == 2 and submitted[str(r.id)] == 1 for r in requests)
    assert _audited(events, "request.create") == Counter({str(r.id): 1 for r in requests})
    status_of = {str(r.id): r.status for r in requests}
    assert all(status_of[str(o.request_id)] == RequestStatus.CIRCULATED.value for o in offers)
    assert Counter(str(n.object_id) for n in notifications) == Counter(
        {str(offer.id): 1 for offer in offers}
    )
    assert _audited(events, "offer.create") == Counter({str(o.id): 1 for o in offers})


async def test_worker_killed_mid_write_leaves_whole_objects_and_a_valid_chain(
    fresh_database_url: str, start_server: Callable[..., AppServer]
) -> None:
    database = Database(fresh_database_url)
    secretariat = await make_org(database, kind="secretariat")
    state = await make_org(database)
    entity = await make_org(database, kind="compact_entity")
    users = {
        "analyst": await make_user(database, org=secretariat, roles=("cted_analyst",)),
        "officer": await make_user(database, org=secretariat, roles=("consent_officer",)),
        "state": await make_user(database, org=state, roles=("state_focal_point",)),
        "entity": await make_user(database, org=entity, roles=("entity_focal_point",)),
    }
    server = start_server(fresh_database_url)
    clients = {name: live_client(server.base) for name in users}
    try:
        for name, user in users.items():
            await live_sign_in(clients[name], user.email)
        world = await _prepare_world(clients, state.code)
        load = await _drive_and_kill(server, clients, world)
        # Refusals are expected only as 409s (a request closed meanwhile): never a 5xx.
        assert not [code for code in load.statuses if code >= 500], load.statuses

        # A new process on the same database: it starts, reads and writes as before.
        server.start()
        analyst = live_client(server.base)
        analyst.cookies = clients["analyst"].cookies
        analyst.headers["X-CSRF-Token"] = clients["analyst"].headers["X-CSRF-Token"]
        async with analyst:
            again = await analyst.post("/api/v1/reports", json=_report_body(state.code, "After"))
            assert again.status_code == 201, again.text
            load.answered("report", again)
            listed = await analyst.get("/api/v1/reports", params={"state": state.code})
            assert listed.status_code == 200
        await _assert_consistent(database, load)
    finally:
        for client in clients.values():
            await client.aclose()
        await database.dispose()
