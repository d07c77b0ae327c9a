"""Portal pages of technical assistance: needs, requests, offers and implementation plans.

Every page x every role (and anonymous), scope (nothing outside it, 404 for another
State's object), CSRF refusals that change nothing, the workflow end to end through the
forms, form errors (422, re-rendered) and domain errors (HTML pages).
"""

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import col, select

from ctcp.assistance.models import (
    AssistanceRequest,
    CapacityConsultation,
    IndicatorUpdate,
    Need,
    Offer,
    PlanIndicator,
    PlanMeasure,
    RequestTransition,
)
from ctcp.core.db import Database
from tests.assistance.conftest import Assist, build_world
from tests.factories import audit_events
from tests.web.conftest import Reader, reader

ROLES = (
    "anonymous",
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
OTHER_NEED_TEXT = "UNSHARED-NEED-OF-ANOTHER-STATE"
OTHER_REQUEST_TITLE = "UNSHARED-REQUEST-OF-ANOTHER-STATE"
FINDINGS = "BASELINE-FINDINGS-CONFIDENTIAL"
PARTICIPANT = "PARTICIPANT-JANE-DOE"
OTHER_MEASURE = "MEASURE-OF-THE-OTHER-ENTITY"


@dataclass
class Scene:
    world: Assist
    readers: dict[str, Reader] = field(default_factory=dict)
    need: dict[str, Any] = field(default_factory=dict)
    other_need: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    other_request: dict[str, Any] = field(default_factory=dict)
    offer: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def indicator(self) -> str:
        return str(self.plan["measures"][0]["indicators"][0]["id"])

    def __getitem__(self, who: str) -> Reader:
        return self.readers[who]


async def _file_for(world: Assist, state_code: str, need: dict[str, Any], title: str) -> Any:
    filed = await world["analyst"].post(
        "/api/v1/assistance-requests",
        json={
            "state": state_code,
            "title": title,
            "description": "Filed on the State's behalf.",
            "need_ids": [need["id"]],
        },
    )
    assert filed.status_code == 201, filed.text
    return filed.json()


async def _plan(world: Assist) -> dict[str, Any]:
    created = await world["analyst"].post(
        "/api/v1/consultations",
        json={
            "state": world.state.code,
            "programme": "countering_terrorist_travel",
            "start_date": "2026-03-02",
            "end_date": "2026-03-04",
            "participants": [{"name": PARTICIPANT, "organization": "Border police"}],
            "baseline_findings": FINDINGS,
            "measures": [
                {
                    "title": "API/PNR legal framework",
                    "recommendations": "Adopt the API law.",
                    "entity": world.entity.code,
                    "indicators": [
                        {
                            "name": "Airports connected",
                            "unit": "airports",
                            "baseline": 0,
                            "target": 4,
                            "due_date": "2027-06-30",
                        }
                    ],
                },
                {
                    "title": OTHER_MEASURE,
                    "recommendations": "Train the analysts.",
                    "entity": world.other_entity.code,
                    "indicators": [],
                },
            ],
        },
    )
    assert created.status_code == 201, created.text
    plan: dict[str, Any] = created.json()
    return plan


@asynccontextmanager
async def _scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """A State sharing its needs with a circulated request and a pending offer; another
    State not sharing, with its own request; a plan with measures for two entities."""
    world = await build_world(app, database)
    found = Scene(world)
    await world.share_needs()
    found.need = await world.need(description="Passenger data systems, shared.")
    found.other_need = await world.need(state=world.other_state, description=OTHER_NEED_TEXT)
    found.request = await world.circulated(found.need)
    offered = await world.offer(found.request["id"])
    assert offered.status_code == 201, offered.text
    found.offer = offered.json()
    found.other_request = await _file_for(
        world, world.other_state.code, found.other_need, OTHER_REQUEST_TITLE
    )
    await world.move(found.other_request["id"], "under_review")
    await world.move(found.other_request["id"], "circulated")
    found.plan = await _plan(world)
    for name, roles, org in (
        ("state_focal_point", ("state_focal_point",), world.state),
        ("other_state", ("state_focal_point",), world.other_state),
        ("entity_focal_point", ("entity_focal_point",), world.entity),
        ("other_entity", ("entity_focal_point",), world.other_entity),
        ("cted_analyst", ("cted_analyst",), None),
        ("consent_officer", ("consent_officer",), None),
        ("platform_admin", ("platform_admin",), None),
        ("auditor", ("auditor",), None),
    ):
        kind = "compact_entity" if name.endswith("entity") else "member_state"
        found.readers[name] = await reader(app, database, roles=roles, org=org, kind=kind)
    try:
        yield found
    finally:
        for client in world.clients.values():
            await client.aclose()
        for person in found.readers.values():
            await person.client.aclose()


@pytest.fixture
async def scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """A scene for one test, which changes it."""
    async with _scene(app, database) as built:
        yield built


@pytest.fixture(scope="module")
async def shared_scene(app: FastAPI, database: Database) -> AsyncIterator[Scene]:
    """One scene for the tests that leave it as they found it (they read, are refused, or
    send forms with errors), so its sixteen sign-ins are not repeated for each."""
    async with _scene(app, database) as built:
        yield built


# --- every page x every role ----------------------------------------------------------

S, E, A, OFFICER, ADMIN, AUDITOR = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)


def _expect(ok: int, allowed: tuple[str, ...], **special: int) -> dict[str, int]:
    """`ok` for the allowed roles, 403 for the others, 303 (sign in) for anonymous."""
    statuses = {role: (ok if role in allowed else 403) for role in ROLES[1:]}
    statuses["anonymous"] = 303
    return statuses | special


def _get_rows(scene: Scene) -> list[tuple[str, dict[str, int]]]:
    need, request = scene.need["id"], scene.request["id"]
    offer, plan = scene.offer["id"], scene.plan["id"]
    return [
        ("/portal/needs", _expect(200, (S, E, A, OFFICER))),
        (
            "/portal/needs?area=border_management&status=open&priority=high",
            _expect(200, (S, E, A, OFFICER)),
        ),
        (f"/portal/needs/{need}", _expect(200, (S, E, A, OFFICER))),
        ("/portal/needs/new", _expect(200, (A,))),
        ("/portal/requests", _expect(200, (S, E, A))),
        ("/portal/requests?status=circulated", _expect(200, (S, E, A))),
        (f"/portal/requests/{request}", _expect(200, (S, E, A))),
        ("/portal/requests/new", _expect(200, (S, A))),
        (f"/portal/requests/new?state={scene.world.state.code}", _expect(200, (S, A))),
        # The guard lets the State and CTED in; the move must be theirs (403) and legal (409).
        (f"/portal/requests/{request}/transition?to=declined", _expect(200, (A,))),
        (f"/portal/requests/{request}/transition?to=withdrawn", _expect(200, (S,))),
        (f"/portal/requests/{request}/transition?to=circulated", _expect(409, (S, A))),
        ("/portal/offers", _expect(200, (S, E, A))),
        ("/portal/offers?status=pending", _expect(200, (S, E, A))),
        (f"/portal/offers/{offer}/accept", _expect(200, (S,))),
        (f"/portal/offers/{offer}/decline", _expect(200, (S,))),
        ("/portal/plans", _expect(200, (S, E, A, OFFICER))),
        ("/portal/plans?programme=fusion_cells", _expect(200, (S, E, A, OFFICER))),
        (f"/portal/plans/{plan}", _expect(200, (S, E, A, OFFICER))),
        ("/portal/plans/new", _expect(200, (A,))),
    ]


def _post_rows(scene: Scene) -> list[tuple[str, dict[str, str], dict[str, int]]]:
    """Posts with a form that cannot be saved: 422 (re-rendered) for the roles allowed."""
    need, request = scene.need["id"], scene.request["id"]
    offer, plan, indicator = scene.offer["id"], scene.plan["id"], scene.indicator
    too_long = {"reason": "x" * 2001}
    return [
        ("/portal/needs/new", {}, _expect(422, (A,))),
        (f"/portal/needs/{need}", {"description": ""}, _expect(422, (A,))),
        ("/portal/requests/new", {}, _expect(422, (S, A))),
        (
            f"/portal/requests/{request}/transition",
            {"to": "withdrawn"},
            _expect(422, (S,)),
        ),
        (f"/portal/requests/{request}/offers", {}, _expect(422, (E,))),
        (f"/portal/offers/{offer}/accept", too_long, _expect(422, (S,))),
        (f"/portal/offers/{offer}/decline", too_long, _expect(422, (S,))),
        ("/portal/plans/new", {}, _expect(422, (A,))),
        (f"/portal/plans/{plan}/measures", {}, _expect(422, (A,))),
        (
            f"/portal/plans/{plan}/indicators/{indicator}/progress",
            {"value": "many"},
            _expect(422, (E, A)),
        ),
    ]


async def _as(scene: Scene, role: str, method: str, path: str, data: dict[str, str]) -> Any:
    if role == "anonymous":
        client = scene.world["anonymous"]
        if method == "GET":
            return await client.get(path)
        return await client.post(path, data=data)
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
    for path, data, expected in _post_rows(shared_scene):
        for role in ROLES:
            response = await _as(shared_scene, role, "POST", path, data)
            if response.status_code != expected[role]:
                wrong.append(f"POST {path} as {role}: {response.status_code} != {expected[role]}")
            elif role == "anonymous":
                assert response.headers["location"].startswith("/portal/sign-in")
    assert wrong == []


async def test_pages_have_one_h1_and_no_script(shared_scene: Scene) -> None:
    for path, expected in _get_rows(shared_scene):
        for role in ROLES[1:]:
            if expected[role] != 200:
                continue
            page = await shared_scene[role].get(path)
            assert page.text.count("<h1") == 1, (path, role)
            assert "<script" not in page.text and "style=" not in page.text, (path, role)


# --- scope --------------------------------------------------------------------------


async def test_an_entity_sees_only_shared_needs_and_requests(shared_scene: Scene) -> None:
    entity = shared_scene[E]
    needs = await entity.get("/portal/needs")
    assert needs.status_code == 200
    assert "Passenger data systems, shared." in needs.text
    assert OTHER_NEED_TEXT not in needs.text
    assert (await entity.get(f"/portal/needs/{shared_scene.other_need['id']}")).status_code == 404
    requests = await entity.get("/portal/requests")
    assert shared_scene.request["title"] in requests.text
    assert OTHER_REQUEST_TITLE not in requests.text
    assert (
        await entity.get(f"/portal/requests/{shared_scene.other_request['id']}")
    ).status_code == 404
    detail = await entity.get(f"/portal/requests/{shared_scene.request['id']}")
    assert OTHER_NEED_TEXT not in detail.text
    # An entity reads no matching suggestions and makes no moves.
    need = await entity.get(f"/portal/needs/{shared_scene.need['id']}")
    assert "Matching suggestions" not in need.text
    assert "/transition" not in detail.text and "Make an offer" in detail.text


async def test_an_entity_sees_only_its_own_offers(scene: Scene) -> None:
    other = await scene.world.offer(
        scene.request["id"], who="other_entity", programme="OTHER-ENTITY-PROGRAMME"
    )
    assert other.status_code == 201
    for path in ("/portal/offers", f"/portal/requests/{scene.request['id']}"):
        page = await scene[E].get(path)
        assert "Countering Terrorist Travel" in page.text
        assert "OTHER-ENTITY-PROGRAMME" not in page.text
        state_page = await scene[S].get(path)
        assert "OTHER-ENTITY-PROGRAMME" in state_page.text
    # Deciding is the State's: the entity has no decision page.
    assert (await scene[E].get(f"/portal/offers/{scene.offer['id']}/accept")).status_code == 403


async def test_another_state_sees_nothing_of_this_one(shared_scene: Scene) -> None:
    other = shared_scene["other_state"]
    assert (await other.get(f"/portal/requests/{shared_scene.request['id']}")).status_code == 404
    assert (await other.get(f"/portal/needs/{shared_scene.need['id']}")).status_code == 404
    assert (await other.get(f"/portal/plans/{shared_scene.plan['id']}")).status_code == 404
    assert (
        await other.get(f"/portal/requests/{shared_scene.request['id']}/transition?to=withdrawn")
    ).status_code == 404
    assert (await other.get(f"/portal/offers/{shared_scene.offer['id']}/accept")).status_code == 404
    listing = await other.get("/portal/requests")
    assert shared_scene.request["title"] not in listing.text
    assert OTHER_REQUEST_TITLE in listing.text
    needs = await other.get("/portal/needs")
    assert "Passenger data systems, shared." not in needs.text
    plans = await other.get("/portal/plans")
    assert f"/portal/plans/{shared_scene.plan['id']}" not in plans.text
    # The State's own list holds its own request and not the other State's.
    own = await shared_scene[S].get("/portal/requests")
    assert shared_scene.request["title"] in own.text and OTHER_REQUEST_TITLE not in own.text
    # A withdrawal by another State is refused as if the request did not exist.
    withdrawn = await other.post(
        f"/portal/requests/{shared_scene.request['id']}/transition",
        {"to": "withdrawn", "reason": "Not ours."},
    )
    assert withdrawn.status_code == 404
    assert await _request_status(shared_scene, shared_scene.request["id"]) == "circulated"


async def test_an_entity_sees_only_its_own_measures(shared_scene: Scene) -> None:
    plan = await shared_scene[E].get(f"/portal/plans/{shared_scene.plan['id']}")
    assert plan.status_code == 200
    assert "API/PNR legal framework" in plan.text
    assert OTHER_MEASURE not in plan.text
    assert FINDINGS not in plan.text and PARTICIPANT not in plan.text
    assert f"/indicators/{shared_scene.indicator}/progress" in plan.text  # in charge: may report
    whole = await shared_scene[S].get(f"/portal/plans/{shared_scene.plan['id']}")
    assert OTHER_MEASURE in whole.text and FINDINGS in whole.text and PARTICIPANT in whole.text
    assert "/progress" not in whole.text  # the State reads, it does not report
    # The other entity in charge sees its own measure, not this one's.
    theirs = await shared_scene["other_entity"].get(f"/portal/plans/{shared_scene.plan['id']}")
    assert OTHER_MEASURE in theirs.text and "API/PNR legal framework" not in theirs.text
    refused = await shared_scene["other_entity"].post(
        f"/portal/plans/{shared_scene.plan['id']}/indicators/{shared_scene.indicator}/progress",
        {"value": "3"},
    )
    assert refused.status_code == 404
    assert await _updates_of(shared_scene) == 0


async def test_an_entity_in_charge_of_no_measure_does_not_see_the_plan(
    app: FastAPI, database: Database, shared_scene: Scene
) -> None:
    from tests.factories import make_org

    stranger = await reader(
        app,
        database,
        roles=("entity_focal_point",),
        org=await make_org(database, kind="compact_entity"),
        kind="compact_entity",
    )
    try:
        assert (await stranger.get(f"/portal/plans/{shared_scene.plan['id']}")).status_code == 404
        listing = await stranger.get("/portal/plans")
        assert f"/portal/plans/{shared_scene.plan['id']}" not in listing.text
    finally:
        await stranger.client.aclose()


# --- CSRF ---------------------------------------------------------------------------


async def _updates_of(scene: Scene) -> int:
    """Progress recorded on the scene's indicator (other tests share the database)."""
    async with scene.world.database.sessionmaker() as session:
        statement = (
            select(func.count())
            .select_from(IndicatorUpdate)
            .where(col(IndicatorUpdate.indicator_id) == uuid.UUID(scene.indicator))
        )
        return int((await session.exec(statement)).one())


async def _count(scene: Scene, model: Any) -> int:
    async with scene.world.database.sessionmaker() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def _request_status(scene: Scene, request_id: str) -> str:
    async with scene.world.database.sessionmaker() as session:
        found = await session.get(AssistanceRequest, uuid.UUID(request_id))
        assert found is not None
        return found.status


async def _snapshot(scene: Scene) -> dict[str, Any]:
    models = (
        Need,
        AssistanceRequest,
        RequestTransition,
        Offer,
        CapacityConsultation,
        PlanMeasure,
        PlanIndicator,
        IndicatorUpdate,
    )
    counts = {model.__name__: await _count(scene, model) for model in models}
    async with scene.world.database.sessionmaker() as session:
        need = await session.get(Need, uuid.UUID(scene.need["id"]))
        offers = (await session.exec(select(Offer.id, Offer.status))).all()
        requests = (
            await session.exec(select(AssistanceRequest.id, AssistanceRequest.status))
        ).all()
        assert need is not None
        return counts | {
            "need": (need.description, need.status, need.priority),
            "offers": sorted((str(i), s) for i, s in offers),
            "requests": sorted((str(i), s) for i, s in requests),
        }


async def test_every_post_without_the_csrf_token_is_refused(shared_scene: Scene) -> None:
    request, offer, plan = (
        shared_scene.request["id"],
        shared_scene.offer["id"],
        shared_scene.plan["id"],
    )
    state = shared_scene.world.state.code
    posts: list[tuple[str, str, dict[str, Any]]] = [
        (
            A,
            "/portal/needs/new",
            {
                "state": state,
                "area": "legislation",
                "description": "New need.",
                "priority": "low",
                "status": "open",
                "source": "state_request",
            },
        ),
        (
            A,
            f"/portal/needs/{shared_scene.need['id']}",
            {"description": "Changed.", "status": "met"},
        ),
        (
            S,
            "/portal/requests/new",
            {"title": "T", "description": "D", "need_ids": shared_scene.need["id"]},
        ),
        (A, f"/portal/requests/{request}/transition", {"to": "declined", "reason": "No."}),
        (S, f"/portal/requests/{request}/transition", {"to": "withdrawn", "reason": "No."}),
        (
            E,
            f"/portal/requests/{request}/offers",
            {"programme": "P", "description": "D", "timeline": "2027"},
        ),
        (S, f"/portal/offers/{offer}/accept", {}),
        (S, f"/portal/offers/{offer}/decline", {"reason": "No."}),
        (
            A,
            "/portal/plans/new",
            {
                "state": state,
                "programme": "fusion_cells",
                "start_date": "2026-05-01",
                "end_date": "2026-05-02",
                "baseline_findings": "F.",
            },
        ),
        (
            A,
            f"/portal/plans/{plan}/measures",
            {"title": "M", "recommendations": "R", "entity": shared_scene.world.entity.code},
        ),
        (E, f"/portal/plans/{plan}/indicators/{shared_scene.indicator}/progress", {"value": "2"}),
    ]
    before = await _snapshot(shared_scene)
    for role, path, data in posts:
        response = await shared_scene[role].post_without_csrf(path, data)
        assert response.status_code == 403, (path, response.status_code)
        wrong_token = await shared_scene[role].client.post(
            path, data=data | {"csrf_token": "forged"}
        )
        assert wrong_token.status_code == 403, path
    assert await _snapshot(shared_scene) == before


# --- happy paths ----------------------------------------------------------------------


async def test_an_analyst_records_and_updates_a_need(scene: Scene) -> None:
    analyst = scene[A]
    form = await analyst.get("/portal/needs/new")
    assert 'name="description"' in form.text
    created = await analyst.post(
        "/portal/needs/new",
        {
            "state": scene.world.state.code,
            "area": "legislation",
            "description": "A counter-terrorism law review.",
            "priority": "medium",
            "status": "partially_met",
            "source": "state_request",
        },
    )
    assert created.status_code == 303, created.text
    need_id = created.headers["location"].removeprefix("/portal/needs/")
    async with scene.world.database.sessionmaker() as session:
        need = await session.get(Need, uuid.UUID(need_id))
        assert need is not None
        assert (need.area, need.status, need.priority) == (
            "legislation",
            "partially_met",
            "medium",
        )
    assert await audit_events(scene.world.database, action="need.create", object_id=need_id)
    page = await analyst.get(f"/portal/needs/{need_id}")
    assert "A counter-terrorism law review." in page.text and "Need recorded." in page.text
    updated = await analyst.post(
        f"/portal/needs/{need_id}",
        {"description": "A law review, narrowed.", "priority": "high", "status": "met"},
    )
    assert updated.status_code == 303
    async with scene.world.database.sessionmaker() as session:
        need = await session.get(Need, uuid.UUID(need_id))
        assert need is not None
        assert (need.description, need.status, need.priority) == (
            "A law review, narrowed.",
            "met",
            "high",
        )
    changes = await audit_events(scene.world.database, action="need.update", object_id=need_id)
    assert len(changes) == 2  # partially met at creation, then the edit


async def test_a_need_from_a_recommendation(scene: Scene) -> None:
    report = await scene.world.adopted_report()
    recommendation = report["sections"][0]["recommendations"][0]["id"]
    created = await scene[A].post(
        "/portal/needs/new",
        {
            "state": scene.world.state.code,
            "area": "",
            "description": "From the report.",
            "priority": "high",
            "status": "open",
            "source": "recommendation",
            "recommendation_id": recommendation,
        },
    )
    assert created.status_code == 303, created.text
    page = await scene[A].get(created.headers["location"])
    assert f"/portal/reports/{report['id']}" in page.text
    missing = await scene[A].post(
        "/portal/needs/new",
        {
            "state": scene.world.state.code,
            "description": "No link.",
            "priority": "high",
            "status": "open",
            "source": "recommendation",
        },
    )
    assert missing.status_code == 422
    assert "needs recommendation_id" in missing.text


async def test_suggestions_are_shown_to_cted(shared_scene: Scene) -> None:
    page = await shared_scene[A].get(f"/portal/needs/{shared_scene.need['id']}")
    assert "Matching suggestions" in page.text
    assert "Countering Terrorist Travel" in page.text  # the entity's earlier offer
    assert await audit_events(
        shared_scene.world.database, action="need.suggestions", object_id=shared_scene.need["id"]
    )
    state_page = await shared_scene[S].get(f"/portal/needs/{shared_scene.need['id']}")
    assert "Matching suggestions" not in state_page.text


async def test_the_workflow_through_the_forms(scene: Scene) -> None:
    world, state, analyst = scene.world, scene[S], scene[A]
    need = await world.need(description="Screening at sea ports.")
    form = await state.get("/portal/requests/new")
    assert need["id"] in form.text and OTHER_NEED_TEXT not in form.text
    filed = await state.post(
        "/portal/requests/new",
        {
            "title": "Sea-port screening",
            "description": "Help with screening.",
            "need_ids": need["id"],
        },
    )
    assert filed.status_code == 303, filed.text
    request_id = filed.headers["location"].removeprefix("/portal/requests/")
    assert await audit_events(world.database, action="request.create", object_id=request_id)
    page = await state.get(f"/portal/requests/{request_id}")
    assert "Sea-port screening" in page.text and "Request filed." in page.text
    assert "?to=withdrawn" in page.text and "?to=declined" not in page.text
    analyst_page = await analyst.get(f"/portal/requests/{request_id}")
    assert 'value="under_review"' in analyst_page.text and "?to=declined" in analyst_page.text

    moved = await analyst.post(f"/portal/requests/{request_id}/transition", {"to": "under_review"})
    assert moved.status_code == 303
    assert await _request_status(scene, request_id) == "under_review"
    choose = await analyst.get(f"/portal/requests/{request_id}/transition?to=circulated")
    assert world.entity.code in choose.text
    moved = await analyst.post(
        f"/portal/requests/{request_id}/transition",
        {"to": "circulated", "notify": world.entity.code},
    )
    assert moved.status_code == 303
    assert await _request_status(scene, request_id) == "circulated"
    told = await world.notifications(event="request.circulated", object_id=request_id)
    recipients = {n.recipient_user_id for n in told}
    assert scene[E].user.id in recipients and scene["other_entity"].user.id not in recipients
    transitions = await audit_events(
        world.database, action="request.transition", object_id=request_id
    )
    assert len(transitions) == 2

    # Two entities offer through the form; the State accepts one.
    offer_ids = []
    for who, programme in ((E, "Programme A"), ("other_entity", "Programme B")):
        sent = await scene[who].post(
            f"/portal/requests/{request_id}/offers",
            {
                "programme": programme,
                "description": "Training and equipment.",
                "timeline": "2027",
                "budget": "125000.50",
                "currency": "usd",
            },
        )
        assert sent.status_code == 303, sent.text
        async with world.database.sessionmaker() as session:
            offer = (
                await session.exec(select(Offer).where(col(Offer.programme) == programme))
            ).one()
            offer_ids.append(str(offer.id))
            assert offer.currency == "USD" and offer.status == "pending"
        assert await audit_events(world.database, action="offer.create", object_id=str(offer.id))
    state_page = await state.get(f"/portal/requests/{request_id}")
    assert f"/portal/offers/{offer_ids[0]}/accept" in state_page.text
    confirm = await state.get(f"/portal/offers/{offer_ids[0]}/accept")
    assert "Programme A" in confirm.text and 'action="/portal/offers/' in confirm.text
    accepted = await state.post(f"/portal/offers/{offer_ids[0]}/accept")
    assert accepted.status_code == 303
    assert accepted.headers["location"] == f"/portal/requests/{request_id}"
    assert await _request_status(scene, request_id) == "matched"
    async with world.database.sessionmaker() as session:
        statuses = {
            str(o.id): o.status
            for o in (
                await session.exec(
                    select(Offer).where(col(Offer.request_id) == uuid.UUID(request_id))
                )
            ).all()
        }
    assert statuses == {offer_ids[0]: "accepted", offer_ids[1]: "not_selected"}
    assert await audit_events(world.database, action="offer.accept", object_id=offer_ids[0])
    mine = await scene[E].get("/portal/offers")
    assert "Programme A" in mine.text and "Accepted" in mine.text

    # Accepting again is a conflict, shown as a page.
    again = await state.post(f"/portal/offers/{offer_ids[1]}/accept")
    assert again.status_code == 409 and "Traceback" not in again.text

    for to in ("in_progress", "completed"):
        moved = await state.post(f"/portal/requests/{request_id}/transition", {"to": to})
        assert moved.status_code == 303
        assert await _request_status(scene, request_id) == to


async def test_declining_an_offer_and_the_request_with_reasons(scene: Scene) -> None:
    world, state = scene.world, scene[S]
    offer_id = scene.offer["id"]
    confirm = await state.get(f"/portal/offers/{offer_id}/decline")
    assert 'name="reason"' in confirm.text
    declined = await state.post(
        f"/portal/offers/{offer_id}/decline", {"reason": "Outside our priorities."}
    )
    assert declined.status_code == 303
    async with world.database.sessionmaker() as session:
        offer = await session.get(Offer, uuid.UUID(offer_id))
        assert offer is not None
        assert (offer.status, offer.decision_reason) == ("declined", "Outside our priorities.")
    assert await audit_events(world.database, action="offer.decline", object_id=offer_id)
    assert await _request_status(scene, scene.request["id"]) == "circulated"

    # A second offer stays pending until CTED declines the request: then it is closed.
    second = await world.offer(scene.request["id"], who="other_entity")
    assert second.status_code == 201
    confirm = await scene[A].get(f"/portal/requests/{scene.request['id']}/transition?to=declined")
    assert confirm.status_code == 200 and 'name="reason"' in confirm.text
    ended = await scene[A].post(
        f"/portal/requests/{scene.request['id']}/transition",
        {"to": "declined", "reason": "Covered by another programme."},
    )
    assert ended.status_code == 303
    assert await _request_status(scene, scene.request["id"]) == "declined"
    async with world.database.sessionmaker() as session:
        closed = await session.get(Offer, uuid.UUID(second.json()["id"]))
        assert closed is not None and closed.status == "closed"
        step = (
            await session.exec(
                select(RequestTransition)
                .where(col(RequestTransition.request_id) == uuid.UUID(scene.request["id"]))
                .where(col(RequestTransition.to_status) == "declined")
            )
        ).one()
        assert step.reason == "Covered by another programme."
    page = await state.get(f"/portal/requests/{scene.request['id']}")
    assert "Covered by another programme." in page.text


async def test_a_withdrawal_needs_a_reason(scene: Scene) -> None:
    path = f"/portal/requests/{scene.request['id']}/transition"
    missing = await scene[S].post(path, {"to": "withdrawn", "reason": ""})
    assert missing.status_code == 422
    assert "Say why the request ends here." in missing.text and 'name="reason"' in missing.text
    assert await _request_status(scene, scene.request["id"]) == "circulated"
    withdrawn = await scene[S].post(path, {"to": "withdrawn", "reason": "Solved nationally."})
    assert withdrawn.status_code == 303
    assert await _request_status(scene, scene.request["id"]) == "withdrawn"


async def test_an_illegal_move_is_a_409_page(shared_scene: Scene) -> None:
    response = await shared_scene[A].post(
        f"/portal/requests/{shared_scene.request['id']}/transition", {"to": "completed"}
    )
    assert response.status_code == 409
    assert "text/html" in response.headers["content-type"]
    assert "This change conflicts with the current state" in response.text
    assert "Traceback" not in response.text and "ctcp.assistance" not in response.text
    # Matching goes through an offer, never a bare move; an entity may not move at all.
    matched = await shared_scene[S].post(
        f"/portal/requests/{shared_scene.request['id']}/transition", {"to": "matched"}
    )
    assert matched.status_code == 409
    by_entity = await shared_scene[E].post(
        f"/portal/requests/{shared_scene.request['id']}/transition",
        {"to": "withdrawn", "reason": "x"},
    )
    assert by_entity.status_code == 403
    assert await _request_status(shared_scene, shared_scene.request["id"]) == "circulated"


async def test_forms_with_errors_are_shown_again(shared_scene: Scene) -> None:
    need = await shared_scene[A].post(
        "/portal/needs/new",
        {
            "state": shared_scene.world.state.code,
            "area": "legislation",
            "description": "",
            "priority": "urgent",
            "status": "open",
            "source": "state_request",
        },
    )
    assert need.status_code == 422
    assert "Fill in this field." in need.text and "Choose a value from the list." in need.text
    assert 'aria-invalid="true"' in need.text

    request = await shared_scene[S].post(
        "/portal/requests/new", {"title": "Kept title", "description": "", "need_ids": []}
    )
    assert request.status_code == 422
    assert "Choose at least one need." in request.text and 'value="Kept title"' in request.text

    offer = await shared_scene[E].post(
        f"/portal/requests/{shared_scene.request['id']}/offers",
        {"programme": "Kept programme", "description": "D", "timeline": "T", "budget": "100"},
    )
    assert offer.status_code == 422
    assert "a budget and its currency go together" in offer.text
    assert 'value="Kept programme"' in offer.text

    plan = await shared_scene[A].post(
        "/portal/plans/new",
        {
            "state": shared_scene.world.state.code,
            "programme": "fusion_cells",
            "start_date": "2026-05-10",
            "end_date": "2026-05-01",
            "baseline_findings": "Kept findings.",
        },
    )
    assert plan.status_code == 422
    assert "end_date must not be before start_date" in plan.text and "Kept findings." in plan.text

    measure = await shared_scene[A].post(
        f"/portal/plans/{shared_scene.plan['id']}/measures",
        {
            "title": "Kept measure",
            "recommendations": "R",
            "entity": shared_scene.world.entity.code,
            "indicators.1.name": "Half an indicator",
        },
    )
    assert measure.status_code == 422
    assert 'id="indicators.1.unit-error"' in measure.text
    assert 'value="Half an indicator"' in measure.text

    progress = await shared_scene[E].post(
        f"/portal/plans/{shared_scene.plan['id']}/indicators/{shared_scene.indicator}/progress",
        {"value": "lots", "note": "Kept note"},
    )
    assert progress.status_code == 422
    assert "Enter a valid number." in progress.text and 'value="Kept note"' in progress.text
    assert await _updates_of(shared_scene) == 0


async def test_plans_are_recorded_extended_and_reported_on(scene: Scene) -> None:
    world, analyst = scene.world, scene[A]
    form = await analyst.get("/portal/plans/new")
    assert 'name="baseline_findings"' in form.text
    created = await analyst.post(
        "/portal/plans/new",
        {
            "state": world.state.code,
            "programme": "fusion_cells",
            "start_date": "2026-05-01",
            "end_date": "2026-05-03",
            "participants": "Ana Lima; Ministry of Interior\nBo Chen",
            "baseline_findings": "No fusion cell yet.",
        },
    )
    assert created.status_code == 303, created.text
    plan_id = created.headers["location"].removeprefix("/portal/plans/")
    async with world.database.sessionmaker() as session:
        plan = await session.get(CapacityConsultation, uuid.UUID(plan_id))
        assert plan is not None
        assert plan.participants == [
            {"name": "Ana Lima", "organization": "Ministry of Interior"},
            {"name": "Bo Chen", "organization": None},
        ]
    assert await audit_events(world.database, action="consultation.create", object_id=plan_id)

    added = await analyst.post(
        f"/portal/plans/{plan_id}/measures",
        {
            "title": "Set up a fusion cell",
            "recommendations": "Create a multi-agency cell.",
            "entity": world.entity.code.lower(),
            "indicators.0.name": "Agencies connected",
            "indicators.0.unit": "agencies",
            "indicators.0.baseline": "1",
            "indicators.0.target": "6",
            "indicators.0.due_date": "2027-12-31",
        },
    )
    assert added.status_code == 303, added.text
    assert await audit_events(world.database, action="consultation.add_measure", object_id=plan_id)
    async with world.database.sessionmaker() as session:
        indicator = (
            await session.exec(
                select(PlanIndicator).where(col(PlanIndicator.name) == "Agencies connected")
            )
        ).one()
    page = await scene[E].get(f"/portal/plans/{plan_id}")
    assert "Set up a fusion cell" in page.text and "No fusion cell yet." not in page.text
    reported = await scene[E].post(
        f"/portal/plans/{plan_id}/indicators/{indicator.id}/progress",
        {"value": "3", "note": "Three agencies joined."},
    )
    assert reported.status_code == 303
    assert reported.headers["location"] == f"/portal/plans/{plan_id}#indicator-{indicator.id}"
    by_cted = await analyst.post(
        f"/portal/plans/{plan_id}/indicators/{indicator.id}/progress", {"value": "4"}
    )
    assert by_cted.status_code == 303
    async with world.database.sessionmaker() as session:
        updates = (
            await session.exec(
                select(IndicatorUpdate)
                .where(col(IndicatorUpdate.indicator_id) == indicator.id)
                .order_by(col(IndicatorUpdate.recorded_at))
            )
        ).all()
        assert [(u.previous, u.value) for u in updates] == [(1.0, 3.0), (3.0, 4.0)]
    assert (
        len(
            await audit_events(
                world.database, action="consultation.progress", object_id=str(indicator.id)
            )
        )
        == 2
    )
    history = await scene[S].get(f"/portal/plans/{plan_id}")
    assert "Three agencies joined." in history.text and "Ana Lima" in history.text
    listing = await scene[S].get("/portal/plans?programme=fusion_cells")
    assert f"/portal/plans/{plan_id}" in listing.text


async def test_lists_page_and_refuse_unknown_filters(shared_scene: Scene) -> None:
    from tests.factories import make_org

    state = await make_org(shared_scene.world.database)
    async with shared_scene.world.database.transaction() as session:
        session.add_all(
            Need(
                state_id=state.id,
                area="legislation",
                description=f"Paged need {number}.",
                priority="low",
                source="state_request",
            )
            for number in range(51)
        )
    first = await shared_scene[A].get(f"/portal/needs?state={state.code}")
    assert first.status_code == 200 and first.text.count("Paged need") == 50
    match = re.search(r'href="([^"]*cursor=[^"]+)" rel="next"', first.text)
    assert match, "no next page link"
    second = await shared_scene[A].get(html.unescape(match.group(1)))
    assert second.status_code == 200 and second.text.count("Paged need") == 1
    assert "First page" in second.text
    for path in (
        "/portal/needs?area=nowhere",
        "/portal/requests?status=lost",
        "/portal/offers?status=x",
    ):
        refused = await shared_scene[A].get(path)
        assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]


async def test_pages_in_french(app: FastAPI, database: Database, shared_scene: Scene) -> None:
    analyst = await reader(app, database, roles=("cted_analyst",), locale="fr")
    try:
        for path in (
            "/portal/needs",
            f"/portal/needs/{shared_scene.need['id']}",
            f"/portal/requests/{shared_scene.request['id']}",
            "/portal/offers",
            f"/portal/plans/{shared_scene.plan['id']}",
            "/portal/plans/new",
        ):
            page = await analyst.get(path)
            assert page.status_code == 200 and 'lang="fr"' in page.text, path
    finally:
        await analyst.client.aclose()
