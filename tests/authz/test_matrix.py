"""The authorization matrix: every role (and anonymous) x every endpoint -> status.

Adding an endpoint without rows here fails `test_every_endpoint_has_matrix_rows`.
Rows whose resource has a data scope also name the object's relation to the caller
(own / other / consented / unconsented); administration and audit are scoped `all`.
"""

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.assistance.models import AssistanceRequest, AssistanceRequestNeed, Need, Offer
from ctcp.audit.service import AuditContext
from ctcp.authz.oauth_scopes import OAuthScope
from ctcp.changes import webhooks
from ctcp.changes.webhooks import WebhookCreate
from ctcp.core.db import Database
from ctcp.core.routes import iter_api_routes
from tests.factories import (
    PASSWORD,
    audit_events,
    bearer_http,
    decide,
    make_api_client,
    make_org,
    make_user,
    new_client,
    sign_in,
)

ROLES = (
    "anonymous",
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
SIGNED_IN = ROLES[1:]
MFA_ENROLLED = {"consent_officer", "platform_admin", "auditor"}
# API clients of a Compact entity, one per OAuth scope, each holding only that scope.
CLIENT_ROLES = tuple(f"client:{scope.value}" for scope in OAuthScope)
# Routes for people only: a bearer token is no session.
PEOPLE_ONLY = {"/api/v1/session", "/api/v1/me", "/api/v1/me/password", "/api/v1/me/mfa"}


@dataclass
class World:
    app: FastAPI
    database: Database
    state_org: Any
    entity_org: Any
    secretariat: Any
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    target_user: Any = None
    other_state: Any = None
    third_state: Any = None
    own_report: str = ""
    other_report: str = ""
    compact_publication: str = ""
    public_publication: str = ""
    own_attachment: str = ""
    published_attachment: str = ""
    api_client: str = ""
    own_need: str = ""
    shared_need: str = ""
    own_request: str = ""
    shared_request: str = ""
    entity_offer: str = ""
    own_consultation: str = ""
    other_consultation: str = ""
    entity_indicator: str = ""
    own_contact: str = ""  # own State's, audience secretariat
    compact_contact: str = ""  # the other State's, by audience
    member_states_contact: str = ""
    secretariat_contact: str = ""
    led_activity: str = ""  # own State's (not sharing), led by the entity
    shared_activity: str = ""  # the other State's (sharing), led by another entity
    unshared_activity: str = ""  # the third State's (not sharing), led by another entity

    @property
    def state_code(self) -> str:
        return str(self.state_org.code)

    @property
    def other_state_code(self) -> str:
        return str(self.other_state.code)

    @property
    def third_state_code(self) -> str:
        return str(self.third_state.code)


Request = tuple[str, str, dict[str, Any] | None]
Build = Callable[[World, str], Awaitable[Request]]


def fixed(method: str, path: str, body: dict[str, Any] | None = None) -> Build:
    async def build(world: World, role: str) -> Request:
        return method, path, body

    return build


def only(role_status: dict[str, int], others: int) -> dict[str, int]:
    return {role: role_status.get(role, others) for role in ROLES}


ADMIN_ONLY = only({"anonymous": 401, "platform_admin": 200}, 403)
AUDITOR_ONLY = only({"anonymous": 401, "auditor": 200}, 403)
REPORT_READERS = only(
    {"anonymous": 401, "state_focal_point": 200, "cted_analyst": 200, "consent_officer": 200}, 403
)
ANALYST_ONLY = only({"anonymous": 401, "cted_analyst": 200}, 403)
CONSENT_READERS = REPORT_READERS
NARROWERS = only({"anonymous": 401, "state_focal_point": 201, "consent_officer": 201}, 403)
PUBLICATION_READERS = only({"anonymous": 401, "platform_admin": 403, "auditor": 403}, 200)
EVERY_ROLE = only({"anonymous": 401}, 200)


async def _new_org(world: World, role: str) -> Request:
    code = f"X{secrets.token_hex(3).upper()}"
    return (
        "POST",
        "/api/v1/organizations",
        {"code": code, "name": "New entity", "kind": "compact_entity"},
    )


async def _new_user(world: World, role: str) -> Request:
    return (
        "POST",
        "/api/v1/users",
        {
            "email": f"new-{secrets.token_hex(4)}@ctcp.example",
            "name": "New user",
            "organization_id": str(world.state_org.id),
            "password": "Lantern-orbit-meadow-71",
            "roles": ["state_focal_point"],
        },
    )


async def _target(world: World, role: str, suffix: str = "") -> str:
    return f"/api/v1/users/{world.target_user.id}{suffix}"


async def _get_user(world: World, role: str) -> Request:
    return "GET", await _target(world, role), None


async def _patch_user(world: World, role: str) -> Request:
    return "PATCH", await _target(world, role), {"name": f"Renamed {secrets.token_hex(2)}"}


async def _put_roles(world: World, role: str) -> Request:
    return "PUT", await _target(world, role, "/roles"), {"roles": ["state_focal_point"]}


def report_body(state_code: str) -> dict[str, Any]:
    return {
        "state": state_code,
        "title": "Assessment visit",
        "kind": "comprehensive",
        "visit_start": "2026-03-02",
        "visit_end": "2026-03-06",
        "language": "en",
        "sections": [
            {
                "area": "legislation",
                "title": "Legislation",
                "body": "Findings.",
                "recommendations": [{"text": "Criminalize financing.", "priority": "high"}],
            }
        ],
    }


async def _new_report(world: World, *, adopt: bool = False, state: Any = None) -> str:
    analyst = world.clients["cted_analyst"]
    created = await analyst.post(
        "/api/v1/reports", json=report_body((state or world.state_org).code)
    )
    assert created.status_code == 201, created.text
    report_id: str = created.json()["id"]
    if adopt:
        assert (await analyst.post(f"/api/v1/reports/{report_id}/adopt")).status_code == 200
    return report_id


async def _create_report(world: World, role: str) -> Request:
    return "POST", "/api/v1/reports", report_body(world.state_org.code)


async def _own_report(world: World, role: str) -> Request:
    return "GET", f"/api/v1/reports/{world.own_report}", None


async def _other_report(world: World, role: str) -> Request:
    return "GET", f"/api/v1/reports/{world.other_report}", None


async def _edit_draft(world: World, role: str) -> Request:
    return (
        "PUT",
        f"/api/v1/reports/{await _new_report(world)}",
        {k: v for k, v in report_body("").items() if k != "state"},
    )


async def _adopt(world: World, role: str) -> Request:
    return "POST", f"/api/v1/reports/{await _new_report(world)}/adopt", None


async def _amend(world: World, role: str) -> Request:
    return "POST", f"/api/v1/reports/{await _new_report(world, adopt=True)}/amend", None


async def _consented(world: World, audience: str) -> str:
    """An adopted report of another State, fully consented to `audience`: its publication."""
    report_id = await _new_report(world, state=world.other_state)
    if audience == "compact":
        world.published_attachment = await _attach(world, report_id)
    analyst = world.clients["cted_analyst"]
    assert (await analyst.post(f"/api/v1/reports/{report_id}/adopt")).status_code == 200
    officer = world.clients["consent_officer"]
    recorded = await decide(
        officer,
        f"/api/v1/reports/{report_id}/consent",
        {"scope": "full", "audience": audience, "reference": "NV/2026/1"},
    )
    assert recorded.status_code == 201, recorded.text
    listed = await world.clients["cted_analyst"].get(
        "/api/v1/publications", params={"state": world.other_state.code, "limit": 200}
    )
    return next(p["id"] for p in listed.json()["items"] if p["report_id"] == report_id)


async def _get_consent(world: World, role: str) -> Request:
    return "GET", f"/api/v1/reports/{world.own_report}/consent", None


async def _get_other_consent(world: World, role: str) -> Request:
    return "GET", f"/api/v1/reports/{world.other_report}/consent", None


async def _narrow_own(world: World, role: str) -> Request:
    report_id = await _new_report(world, adopt=True)
    return "POST", f"/api/v1/reports/{report_id}/consent", {"scope": "none"}


async def _narrow_other(world: World, role: str) -> Request:
    report_id = await _new_report(world, adopt=True, state=world.other_state)
    return "POST", f"/api/v1/reports/{report_id}/consent", {"scope": "none"}


async def _withdraw_own(world: World, role: str) -> Request:
    report_id = await _new_report(world, adopt=True)
    return "POST", f"/api/v1/reports/{report_id}/consent/withdraw", {"reason": "Cabinet"}


async def _withdraw_other(world: World, role: str) -> Request:
    report_id = await _new_report(world, adopt=True, state=world.other_state)
    return "POST", f"/api/v1/reports/{report_id}/consent/withdraw", {"reason": "Cabinet"}


async def _compact_publication(world: World, role: str) -> Request:
    return "GET", f"/api/v1/publications/{world.compact_publication}", None


async def _public_publication(world: World, role: str) -> Request:
    return "GET", f"/api/v1/publications/{world.public_publication}", None


async def _public_detail(world: World, role: str) -> Request:
    return "GET", f"/api/v1/public/publications/{world.public_publication}", None


async def _public_detail_of_compact(world: World, role: str) -> Request:
    return "GET", f"/api/v1/public/publications/{world.compact_publication}", None


PDF = b"%PDF-1.7\n" + b"0" * 100


async def _attach(world: World, report_id: str) -> str:
    response = await world.clients["cted_analyst"].post(
        f"/api/v1/reports/{report_id}/attachments", files={"file": ("a.pdf", PDF)}
    )
    assert response.status_code == 201, response.text
    attachment_id: str = response.json()["id"]
    return attachment_id


async def _upload(world: World, role: str) -> Request:
    raise NotImplementedError  # multipart: sent by `_send` below


async def _own_attachment(world: World, role: str) -> Request:
    return "GET", f"/api/v1/attachments/{world.own_attachment}", None


async def _published_attachment(world: World, role: str) -> Request:
    return "GET", f"/api/v1/attachments/{world.published_attachment}", None


async def _get_org(world: World, role: str) -> Request:
    return "GET", f"/api/v1/organizations/{world.entity_org.id}", None


async def _new_api_client(world: World, role: str) -> Request:
    return (
        "POST",
        "/api/v1/api-clients",
        {
            "organization_id": str(world.entity_org.id),
            "name": "Matrix system",
            "scopes": ["publications:read"],
        },
    )


async def _get_api_client(world: World, role: str) -> Request:
    return "GET", f"/api/v1/api-clients/{world.api_client}", None


async def _disable_api_client(world: World, role: str) -> Request:
    fresh = await make_api_client(world.database, org=world.entity_org)
    return "DELETE", f"/api/v1/api-clients/{fresh.id}", None


async def _rotate_api_client(world: World, role: str) -> Request:
    fresh = await make_api_client(world.database, org=world.entity_org)
    return "POST", f"/api/v1/api-clients/{fresh.id}/secret", None


async def _fresh_webhook(world: World) -> str:
    """An endpoint of a new client (the loopback receiver tests allow), by the service."""
    fresh = await make_api_client(world.database, org=world.entity_org)
    async with world.database.transaction() as session:
        issued = await webhooks.create_webhook(
            session,
            fresh.id,
            WebhookCreate(url="https://127.0.0.1:9999/matrix", types=["publication"]),
            settings=world.app.state.settings,
            context=AuditContext(),
        )
    return str(issued.id)


async def _new_webhook(world: World, role: str) -> Request:
    return (
        "POST",
        f"/api/v1/api-clients/{world.api_client}/webhooks",
        {"url": "https://127.0.0.1:9999/matrix", "types": ["publication"]},
    )


async def _get_webhook(world: World, role: str) -> Request:
    return "GET", f"/api/v1/webhooks/{await _fresh_webhook(world)}", None


async def _rotate_webhook(world: World, role: str) -> Request:
    return "POST", f"/api/v1/webhooks/{await _fresh_webhook(world)}/rotate-secret", None


async def _delete_webhook(world: World, role: str) -> Request:
    return "DELETE", f"/api/v1/webhooks/{await _fresh_webhook(world)}", None


async def _introspect(world: World, role: str) -> Request:
    return "POST", "https://ctcp.test/oauth/introspect", {"token": "ctcp_at_matrix"}


NEED_READERS = only(
    {
        "anonymous": 401,
        "state_focal_point": 200,
        "entity_focal_point": 200,
        "cted_analyst": 200,
        "consent_officer": 200,
    },
    403,
)
REQUEST_READERS = only(
    {"anonymous": 401, "state_focal_point": 200, "entity_focal_point": 200, "cted_analyst": 200},
    403,
)
OFFER_READERS = REQUEST_READERS
CONSULTATION_READERS = NEED_READERS
STATE_ONLY = only({"anonymous": 401, "state_focal_point": 200}, 403)


def need_body(state_code: str, area: str = "border_management") -> dict[str, Any]:
    return {
        "state": state_code,
        "area": area,
        "description": "Passenger data at land borders.",
        "priority": "high",
        "source": "state_request",
    }


async def _make_need(world: World, state: Any) -> str:
    created = await world.clients["cted_analyst"].post("/api/v1/needs", json=need_body(state.code))
    assert created.status_code == 201, created.text
    need_id: str = created.json()["id"]
    return need_id


async def _make_request(world: World, state: Any, need_id: str, *, circulate: bool) -> str:
    analyst = world.clients["cted_analyst"]
    filed = await analyst.post(
        "/api/v1/assistance-requests",
        json={"state": state.code, "title": "T", "description": "D", "need_ids": [need_id]},
    )
    assert filed.status_code == 201, filed.text
    request_id: str = filed.json()["id"]
    for to in ("under_review", "circulated") if circulate else ():
        moved = await analyst.post(
            f"/api/v1/assistance-requests/{request_id}/transition", json={"to": to}
        )
        assert moved.status_code == 200, moved.text
    return request_id


async def _pending_offer_on_own_request(world: World) -> str:
    """Straight into the database: the own State does not share needs in this world."""
    async with world.database.transaction() as session:
        need = Need(
            state_id=world.state_org.id,
            area="legislation",
            description="D",
            priority="low",
            source="state_request",
        )
        filed = AssistanceRequest(
            state_id=world.state_org.id,
            title="T",
            description="D",
            status="circulated",
            filed_by_org=world.state_org.id,
        )
        session.add_all([need, filed])
        await session.flush()
        session.add(AssistanceRequestNeed(request_id=filed.id, need_id=need.id))
        offer = Offer(
            request_id=filed.id,
            organization_id=world.entity_org.id,
            programme="P",
            description="D",
            timeline="2027",
        )
        session.add(offer)
    return str(offer.id)


def consultation_body(state_code: str, entity_code: str) -> dict[str, Any]:
    return {
        "state": state_code,
        "programme": "fusion_cells",
        "start_date": "2026-05-04",
        "end_date": "2026-05-05",
        "baseline_findings": "Findings.",
        "measures": [
            {
                "title": "M",
                "recommendations": "R",
                "entity": entity_code,
                "indicators": [
                    {
                        "name": "I",
                        "unit": "u",
                        "baseline": 0,
                        "target": 1,
                        "due_date": "2027-01-01",
                    }
                ],
            }
        ],
    }


async def _make_consultation(world: World, state: Any, entity: Any) -> dict[str, Any]:
    created = await world.clients["cted_analyst"].post(
        "/api/v1/consultations", json=consultation_body(state.code, entity.code)
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def _assistance_world(world: World) -> None:
    recorded = await decide(
        world.clients["consent_officer"],
        f"/api/v1/states/{world.other_state.code}/needs-consent",
        {"share_needs": True, "reference": "NV/2026/5"},
    )
    assert recorded.status_code == 201, recorded.text
    world.own_need = await _make_need(world, world.state_org)
    world.shared_need = await _make_need(world, world.other_state)
    world.own_request = await _make_request(world, world.state_org, world.own_need, circulate=False)
    world.shared_request = await _make_request(
        world, world.other_state, world.shared_need, circulate=True
    )
    offered = await world.clients["entity_focal_point"].post(
        f"/api/v1/assistance-requests/{world.shared_request}/offers",
        json={"programme": "P", "description": "D", "timeline": "2027"},
    )
    assert offered.status_code == 201, offered.text
    world.entity_offer = offered.json()["id"]
    own = await _make_consultation(world, world.state_org, world.entity_org)
    world.own_consultation = own["id"]
    world.entity_indicator = own["measures"][0]["indicators"][0]["id"]
    other_entity = await make_org(world.database, kind="compact_entity")
    world.other_consultation = (await _make_consultation(world, world.other_state, other_entity))[
        "id"
    ]


def path_of(template: str, attribute: str, method: str = "GET", body: Any = None) -> Build:
    async def build(world: World, role: str) -> Request:
        return method, template.format(getattr(world, attribute)), body

    return build


async def _create_need(world: World, role: str) -> Request:
    return "POST", "/api/v1/needs", need_body(world.state_org.code)


async def _file_request(world: World, role: str) -> Request:
    need_id = await _make_need(world, world.state_org)
    return (
        "POST",
        "/api/v1/assistance-requests",
        {"state": world.state_org.code, "title": "T", "description": "D", "need_ids": [need_id]},
    )


async def _review_request(world: World, role: str) -> Request:
    request_id = await _make_request(
        world, world.state_org, await _make_need(world, world.state_org), circulate=False
    )
    return (
        "POST",
        f"/api/v1/assistance-requests/{request_id}/transition",
        {"to": "under_review"},
    )


async def _withdraw_request(world: World, role: str) -> Request:
    request_id = await _make_request(
        world, world.state_org, await _make_need(world, world.state_org), circulate=False
    )
    return (
        "POST",
        f"/api/v1/assistance-requests/{request_id}/transition",
        {"to": "withdrawn", "reason": "No longer needed."},
    )


async def _offer(world: World, role: str) -> Request:
    return (
        "POST",
        f"/api/v1/assistance-requests/{world.shared_request}/offers",
        {"programme": "P", "description": "D", "timeline": "2027"},
    )


async def _accept(world: World, role: str) -> Request:
    return "POST", f"/api/v1/offers/{await _pending_offer_on_own_request(world)}/accept", None


async def _decline(world: World, role: str) -> Request:
    return "POST", f"/api/v1/offers/{await _pending_offer_on_own_request(world)}/decline", None


async def _create_consultation(world: World, role: str) -> Request:
    return (
        "POST",
        "/api/v1/consultations",
        consultation_body(world.state_org.code, world.entity_org.code),
    )


async def _add_measure(world: World, role: str) -> Request:
    return (
        "POST",
        f"/api/v1/consultations/{world.own_consultation}/measures",
        {"title": "M2", "recommendations": "R", "entity": world.entity_org.code},
    )


CONTACT_READERS = only(
    {
        "anonymous": 401,
        "state_focal_point": 200,
        "entity_focal_point": 200,
        "cted_analyst": 200,
        "consent_officer": 200,
    },
    403,
)
CONTACT_WRITERS = only({"anonymous": 401, "state_focal_point": 200, "cted_analyst": 200}, 403)
CONTACT_CREATORS = only({"anonymous": 401, "state_focal_point": 201, "cted_analyst": 201}, 403)
CONTACT_RETIRERS = only({"anonymous": 401, "state_focal_point": 204, "cted_analyst": 204}, 403)
CONTACT_HISTORIANS = only(
    {"anonymous": 401, "state_focal_point": 200, "cted_analyst": 200, "consent_officer": 200}, 403
)


def contact_body(state_code: str, audience: str = "secretariat") -> dict[str, Any]:
    return {
        "state": state_code,
        "kind": "asset_freeze",
        "authority": "Asset Freezing Unit",
        "email": "freeze@gov.example.org",
        "languages": ["en"],
        "audience": audience,
    }


async def _make_contact(world: World, state: Any, audience: str = "member_states") -> str:
    created = await world.clients["cted_analyst"].post(
        "/api/v1/contact-points", json=contact_body(state.code, audience)
    )
    assert created.status_code == 201, created.text
    contact_id: str = created.json()["id"]
    return contact_id


async def _contacts_world(world: World) -> None:
    world.own_contact = await _make_contact(world, world.state_org, "secretariat")
    for audience in ("compact", "member_states", "secretariat"):
        setattr(
            world, f"{audience}_contact", await _make_contact(world, world.other_state, audience)
        )


async def _create_own_contact(world: World, role: str) -> Request:
    return "POST", "/api/v1/contact-points", contact_body(world.state_code)


async def _create_other_contact(world: World, role: str) -> Request:
    return "POST", "/api/v1/contact-points", contact_body(world.other_state_code)


async def _retire_own_contact(world: World, role: str) -> Request:
    return "DELETE", f"/api/v1/contact-points/{await _make_contact(world, world.state_org)}", None


async def _retire_other_contact(world: World, role: str) -> Request:
    return "DELETE", f"/api/v1/contact-points/{await _make_contact(world, world.other_state)}", None


ACTIVITY_READERS = NEED_READERS
# The change feed: Compact entities, and their systems holding any read scope (each kind
# in it only with its own scope: tests/changes).
CHANGE_READERS = only({"anonymous": 401, "entity_focal_point": 200}, 403)
READ_SCOPES = " ".join(scope.value for scope in OAuthScope if scope.value.endswith(":read"))
ACTIVITY_WRITERS = only({"anonymous": 401, "entity_focal_point": 200, "cted_analyst": 200}, 403)
ACTIVITY_CREATORS = only({"anonymous": 401, "entity_focal_point": 201, "cted_analyst": 201}, 403)


def activity_body(state_code: str, lead: str) -> dict[str, Any]:
    return {
        "state": state_code,
        "area": "border_management",
        "title": "Border management training",
        "description": "Training of border guards.",
        "starts_on": "2027-01-01",
        "ends_on": "2027-06-30",
        "lead": lead,
    }


async def _make_activity(world: World, state: Any, lead: Any) -> str:
    created = await world.clients["cted_analyst"].post(
        "/api/v1/activities", json=activity_body(state.code, lead.code)
    )
    assert created.status_code == 201, created.text
    activity_id: str = created.json()["id"]
    return activity_id


async def _planning_world(world: World) -> None:
    """Activities in a State that does not share its needs (the own State, the third) and
    in one that does (the other State, shared in `_assistance_world`)."""
    other_entity = await make_org(world.database, kind="compact_entity")
    world.led_activity = await _make_activity(world, world.state_org, world.entity_org)
    world.shared_activity = await _make_activity(world, world.other_state, other_entity)
    world.unshared_activity = await _make_activity(world, world.third_state, other_entity)


async def _create_own_activity(world: World, role: str) -> Request:
    return "POST", "/api/v1/activities", activity_body(world.state_code, world.entity_org.code)


async def _create_others_activity(world: World, role: str) -> Request:
    other = await make_org(world.database, kind="compact_entity")
    return "POST", "/api/v1/activities", activity_body(world.state_code, other.code)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    expect: dict[str, int]
    build: Build
    fresh_session: bool = False  # the call ends or replaces the caller's session
    relation: str = ""  # the object's relation to the caller, where a scope applies
    # API clients: this status for those holding `client_scope` ("*": all); 403 for others.
    client_ok: int | None = None
    client_scope: str = OAuthScope.PUBLICATIONS_READ.value  # several: space-separated
    form: bool = False  # the body goes form-encoded (the OAuth endpoints)
    everyone: int | None = None  # the same answer for every caller, clients included

    def expected(self, role: str) -> int | None:
        if self.everyone is not None:
            return self.everyone
        if role not in CLIENT_ROLES:
            return self.expect.get(role)
        if set(self.expect) == {"anonymous"}:
            return None  # public routes: nothing more to learn from a token
        if self.path.removesuffix("/confirm") in PEOPLE_ONLY:
            return 401
        if self.client_ok is not None and (
            self.client_scope == "*" or role.removeprefix("client:") in self.client_scope.split()
        ):
            return self.client_ok
        return 403


ENDPOINTS = [
    Endpoint("GET", "/healthz", {"anonymous": 200}, fixed("GET", "/healthz")),
    Endpoint("GET", "/readyz", {"anonymous": 200}, fixed("GET", "/readyz")),
    Endpoint("GET", "/", {"anonymous": 307}, fixed("GET", "/")),
    Endpoint(
        "POST",
        "/api/v1/session",
        {"anonymous": 401},
        fixed(
            "POST",
            "/api/v1/session",
            {"email": "nobody-matrix@ctcp.example", "password": "not-a-password"},
        ),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/session",
        only({"anonymous": 401}, 204),
        fixed("DELETE", "/api/v1/session"),
        fresh_session=True,
    ),
    Endpoint("GET", "/api/v1/me", EVERY_ROLE, fixed("GET", "/api/v1/me")),
    Endpoint(
        "POST",
        "/api/v1/me/password",
        EVERY_ROLE,
        fixed(
            "POST",
            "/api/v1/me/password",
            {"current_password": PASSWORD, "new_password": "Fresh-orbit-meadow-88"},
        ),
        fresh_session=True,
    ),
    Endpoint(
        "POST",
        "/api/v1/me/mfa",
        only({"anonymous": 401, **{r: 409 for r in MFA_ENROLLED}}, 201),
        fixed("POST", "/api/v1/me/mfa"),
        fresh_session=True,
    ),
    Endpoint(
        "POST",
        "/api/v1/me/mfa/confirm",
        only({"anonymous": 401, **{r: 409 for r in MFA_ENROLLED}}, 404),
        fixed("POST", "/api/v1/me/mfa/confirm", {"otp": "123456"}),
        fresh_session=True,
    ),
    Endpoint("GET", "/api/v1/organizations", EVERY_ROLE, fixed("GET", "/api/v1/organizations")),
    Endpoint("GET", "/api/v1/organizations/{organization_id}", EVERY_ROLE, _get_org),
    Endpoint(
        "POST",
        "/api/v1/organizations",
        only({"anonymous": 401, "platform_admin": 201}, 403),
        _new_org,
    ),
    Endpoint("GET", "/api/v1/users", ADMIN_ONLY, fixed("GET", "/api/v1/users")),
    Endpoint(
        "POST", "/api/v1/users", only({"anonymous": 401, "platform_admin": 201}, 403), _new_user
    ),
    Endpoint("GET", "/api/v1/users/{user_id}", ADMIN_ONLY, _get_user),
    Endpoint("PATCH", "/api/v1/users/{user_id}", ADMIN_ONLY, _patch_user),
    Endpoint("PUT", "/api/v1/users/{user_id}/roles", ADMIN_ONLY, _put_roles),
    Endpoint("GET", "/api/v1/audit-events", AUDITOR_ONLY, fixed("GET", "/api/v1/audit-events")),
    Endpoint(
        "GET",
        "/api/v1/audit-events/export",
        AUDITOR_ONLY,
        fixed("GET", "/api/v1/audit-events/export?action=nothing.matches"),
    ),
    Endpoint(
        "GET",
        "/api/v1/audit-events/checkpoints",
        AUDITOR_ONLY,
        fixed("GET", "/api/v1/audit-events/checkpoints"),
    ),
    Endpoint(
        "POST",
        "/api/v1/reports",
        only({"anonymous": 401, "cted_analyst": 201}, 403),
        _create_report,
    ),
    Endpoint("GET", "/api/v1/reports", REPORT_READERS, fixed("GET", "/api/v1/reports")),
    Endpoint(
        "GET", "/api/v1/reports/{report_id}", REPORT_READERS, _own_report, relation="own state"
    ),
    Endpoint(
        "GET",
        "/api/v1/reports/{report_id}",
        REPORT_READERS | {"state_focal_point": 404},
        _other_report,
        relation="other state",
    ),
    Endpoint("PUT", "/api/v1/reports/{report_id}", ANALYST_ONLY, _edit_draft),
    Endpoint("POST", "/api/v1/reports/{report_id}/adopt", ANALYST_ONLY, _adopt),
    Endpoint(
        "POST",
        "/api/v1/reports/{report_id}/amend",
        only({"anonymous": 401, "cted_analyst": 201}, 403),
        _amend,
    ),
    Endpoint(
        "GET",
        "/api/v1/reports/{report_id}/consent",
        CONSENT_READERS,
        _get_consent,
        relation="own state",
    ),
    Endpoint(
        "GET",
        "/api/v1/reports/{report_id}/consent",
        CONSENT_READERS | {"state_focal_point": 404},
        _get_other_consent,
        relation="other state",
    ),
    Endpoint(
        "POST",
        "/api/v1/reports/{report_id}/consent",
        NARROWERS,
        _narrow_own,
        relation="own state, narrowing",
    ),
    Endpoint(
        "POST",
        "/api/v1/reports/{report_id}/consent",
        NARROWERS | {"state_focal_point": 404},
        _narrow_other,
        relation="other state, narrowing",
    ),
    Endpoint(
        "POST",
        "/api/v1/reports/{report_id}/consent/withdraw",
        NARROWERS,
        _withdraw_own,
        relation="own state",
    ),
    Endpoint(
        "POST",
        "/api/v1/reports/{report_id}/consent/withdraw",
        NARROWERS | {"state_focal_point": 404},
        _withdraw_other,
        relation="other state",
    ),
    Endpoint(
        "GET",
        "/api/v1/publications",
        PUBLICATION_READERS,
        fixed("GET", "/api/v1/publications"),
        client_ok=200,
    ),
    Endpoint(
        "GET",
        "/api/v1/publications/{publication_id}",
        PUBLICATION_READERS | {"state_focal_point": 404},
        _compact_publication,
        relation="other state, consented to the Compact",
        client_ok=200,
    ),
    Endpoint(
        "GET",
        "/api/v1/publications/{publication_id}",
        PUBLICATION_READERS,
        _public_publication,
        relation="other state, consented to the public",
        client_ok=200,
    ),
    Endpoint(
        "POST",
        "/api/v1/reports/{report_id}/attachments",
        only({"anonymous": 401, "cted_analyst": 201}, 403),
        _upload,
    ),
    Endpoint(
        "GET",
        "/api/v1/attachments/{attachment_id}",
        PUBLICATION_READERS | {"entity_focal_point": 404},
        _own_attachment,
        relation="own state's draft report",
        client_ok=404,
    ),
    Endpoint(
        "GET",
        "/api/v1/attachments/{attachment_id}",
        PUBLICATION_READERS | {"state_focal_point": 404},
        _published_attachment,
        relation="other state's, published to the Compact",
        client_ok=200,
    ),
    Endpoint(
        "GET",
        "/api/v1/search",
        PUBLICATION_READERS,
        fixed("GET", "/api/v1/search?q=findings"),
        client_ok=200,
    ),
    Endpoint("GET", "/api/v1/api-clients", ADMIN_ONLY, fixed("GET", "/api/v1/api-clients")),
    Endpoint(
        "POST",
        "/api/v1/api-clients",
        only({"anonymous": 401, "platform_admin": 201}, 403),
        _new_api_client,
    ),
    Endpoint("GET", "/api/v1/api-clients/{api_client_id}", ADMIN_ONLY, _get_api_client),
    Endpoint(
        "DELETE",
        "/api/v1/api-clients/{api_client_id}",
        only({"anonymous": 401, "platform_admin": 204}, 403),
        _disable_api_client,
    ),
    Endpoint("POST", "/api/v1/api-clients/{api_client_id}/secret", ADMIN_ONLY, _rotate_api_client),
    Endpoint(
        "POST",
        "/api/v1/api-clients/{api_client_id}/webhooks",
        only({"anonymous": 401, "platform_admin": 201}, 403),
        _new_webhook,
    ),
    Endpoint("GET", "/api/v1/webhooks", ADMIN_ONLY, fixed("GET", "/api/v1/webhooks")),
    Endpoint("GET", "/api/v1/webhooks/{webhook_id}", ADMIN_ONLY, _get_webhook),
    Endpoint("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret", ADMIN_ONLY, _rotate_webhook),
    Endpoint(
        "DELETE",
        "/api/v1/webhooks/{webhook_id}",
        only({"anonymous": 401, "platform_admin": 204}, 403),
        _delete_webhook,
    ),
    # Without client credentials, every caller is an unauthenticated client here.
    Endpoint(
        "POST",
        "/oauth/token",
        {},
        fixed("POST", "https://ctcp.test/oauth/token", {"grant_type": "client_credentials"}),
        form=True,
        everyone=401,
    ),
    Endpoint(
        "POST",
        "/oauth/revoke",
        {},
        fixed("POST", "https://ctcp.test/oauth/revoke", {"token": "ctcp_at_matrix"}),
        form=True,
        everyone=401,
    ),
    # A signed-in administrator may introspect; clients must authenticate as clients.
    Endpoint(
        "POST",
        "/oauth/introspect",
        only({"anonymous": 401, "platform_admin": 200}, 403),
        _introspect,
        form=True,
        client_ok=401,
        client_scope="*",
    ),
    Endpoint(
        "GET",
        "/api/v1/public/publications",
        {"anonymous": 200},
        fixed("GET", "/api/v1/public/publications"),
    ),
    Endpoint(
        "GET",
        "/api/v1/public/publications/{publication_id}",
        {"anonymous": 200},
        _public_detail,
        relation="public",
    ),
    Endpoint(
        "GET",
        "/api/v1/public/publications/{publication_id}",
        {"anonymous": 404},
        _public_detail_of_compact,
        relation="Compact only",
    ),
    Endpoint(
        "GET",
        "/api/v1/audit-events/verify",
        AUDITOR_ONLY,
        fixed("GET", "/api/v1/audit-events/verify"),
    ),
    Endpoint(
        "GET",
        "/api/v1/needs",
        NEED_READERS,
        fixed("GET", "/api/v1/needs"),
        client_ok=200,
        client_scope="needs:read",
    ),
    Endpoint(
        "POST",
        "/api/v1/needs",
        only({"anonymous": 401, "cted_analyst": 201}, 403),
        _create_need,
    ),
    Endpoint(
        "GET",
        "/api/v1/needs/{need_id}",
        NEED_READERS | {"entity_focal_point": 404},
        path_of("/api/v1/needs/{}", "own_need"),
        relation="own state, not shared",
        client_ok=404,
        client_scope="needs:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/needs/{need_id}",
        NEED_READERS | {"state_focal_point": 404},
        path_of("/api/v1/needs/{}", "shared_need"),
        relation="other state, shared",
        client_ok=200,
        client_scope="needs:read",
    ),
    Endpoint(
        "PATCH",
        "/api/v1/needs/{need_id}",
        ANALYST_ONLY,
        path_of("/api/v1/needs/{}", "own_need", "PATCH", {"priority": "medium"}),
    ),
    Endpoint(
        "GET",
        "/api/v1/needs/{need_id}/suggestions",
        ANALYST_ONLY,
        path_of("/api/v1/needs/{}/suggestions", "own_need"),
    ),
    Endpoint(
        "GET",
        "/api/v1/assistance/overview",
        NEED_READERS,
        fixed("GET", "/api/v1/assistance/overview"),
        client_ok=200,
        client_scope="needs:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/states/{state_code}/needs-consent",
        CONSENT_READERS,
        path_of("/api/v1/states/{}/needs-consent", "state_code"),
        relation="own state",
    ),
    Endpoint(
        "GET",
        "/api/v1/states/{state_code}/needs-consent",
        CONSENT_READERS | {"state_focal_point": 404},
        path_of("/api/v1/states/{}/needs-consent", "other_state_code"),
        relation="other state",
    ),
    Endpoint(
        "POST",
        "/api/v1/states/{state_code}/needs-consent",
        NARROWERS,
        path_of("/api/v1/states/{}/needs-consent", "state_code", "POST", {"share_needs": False}),
        relation="own state, narrowing",
    ),
    Endpoint(
        "POST",
        "/api/v1/states/{state_code}/needs-consent",
        NARROWERS | {"state_focal_point": 404},
        path_of(
            "/api/v1/states/{}/needs-consent", "third_state_code", "POST", {"share_needs": False}
        ),
        relation="other state, narrowing",
    ),
    Endpoint(
        "POST",
        "/api/v1/states/{state_code}/needs-consent/withdraw",
        NARROWERS,
        path_of("/api/v1/states/{}/needs-consent/withdraw", "state_code", "POST", {"reason": "R"}),
        relation="own state",
    ),
    Endpoint(
        "POST",
        "/api/v1/states/{state_code}/needs-consent/withdraw",
        NARROWERS | {"state_focal_point": 404},
        path_of(
            "/api/v1/states/{}/needs-consent/withdraw", "third_state_code", "POST", {"reason": "R"}
        ),
        relation="other state",
    ),
    Endpoint(
        "GET",
        "/api/v1/assistance-requests",
        REQUEST_READERS,
        fixed("GET", "/api/v1/assistance-requests"),
        client_ok=200,
        client_scope="requests:read",
    ),
    Endpoint(
        "POST",
        "/api/v1/assistance-requests",
        only({"anonymous": 401, "state_focal_point": 201, "cted_analyst": 201}, 403),
        _file_request,
    ),
    Endpoint(
        "GET",
        "/api/v1/assistance-requests/{request_id}",
        REQUEST_READERS | {"entity_focal_point": 404},
        path_of("/api/v1/assistance-requests/{}", "own_request"),
        relation="own state, submitted",
        client_ok=404,
        client_scope="requests:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/assistance-requests/{request_id}",
        REQUEST_READERS | {"state_focal_point": 404},
        path_of("/api/v1/assistance-requests/{}", "shared_request"),
        relation="other state, circulated, needs shared",
        client_ok=200,
        client_scope="requests:read",
    ),
    Endpoint(
        "POST",
        "/api/v1/assistance-requests/{request_id}/transition",
        ANALYST_ONLY,
        _review_request,
        relation="own state, submitted -> under_review",
    ),
    Endpoint(
        "POST",
        "/api/v1/assistance-requests/{request_id}/transition",
        STATE_ONLY,
        _withdraw_request,
        relation="own state, submitted -> withdrawn",
    ),
    Endpoint(
        "POST",
        "/api/v1/assistance-requests/{request_id}/offers",
        only({"anonymous": 401, "entity_focal_point": 201}, 403),
        _offer,
        relation="other state, circulated, needs shared",
        client_ok=201,
        client_scope="offers:write",
    ),
    Endpoint(
        "GET",
        "/api/v1/offers",
        OFFER_READERS,
        fixed("GET", "/api/v1/offers"),
        client_ok=200,
        client_scope="offers:write",
    ),
    Endpoint(
        "GET",
        "/api/v1/offers/{offer_id}",
        OFFER_READERS | {"state_focal_point": 404},
        path_of("/api/v1/offers/{}", "entity_offer"),
        relation="own organization's, on another state's request",
        client_ok=200,
        client_scope="offers:write",
    ),
    Endpoint(
        "POST",
        "/api/v1/offers/{offer_id}/accept",
        STATE_ONLY,
        _accept,
        relation="pending, on own state's request",
    ),
    Endpoint(
        "POST",
        "/api/v1/offers/{offer_id}/decline",
        STATE_ONLY,
        _decline,
        relation="pending, on own state's request",
    ),
    Endpoint(
        "POST",
        "/api/v1/consultations",
        only({"anonymous": 401, "cted_analyst": 201}, 403),
        _create_consultation,
    ),
    Endpoint(
        "GET",
        "/api/v1/consultations",
        CONSULTATION_READERS,
        fixed("GET", "/api/v1/consultations"),
    ),
    Endpoint(
        "GET",
        "/api/v1/consultations/{consultation_id}",
        CONSULTATION_READERS,
        path_of("/api/v1/consultations/{}", "own_consultation"),
        relation="own state, a measure in the entity's charge",
    ),
    Endpoint(
        "GET",
        "/api/v1/consultations/{consultation_id}",
        CONSULTATION_READERS | {"state_focal_point": 404, "entity_focal_point": 404},
        path_of("/api/v1/consultations/{}", "other_consultation"),
        relation="other state, no measure of the entity",
    ),
    Endpoint(
        "POST",
        "/api/v1/consultations/{consultation_id}/measures",
        only({"anonymous": 401, "cted_analyst": 201}, 403),
        _add_measure,
    ),
    Endpoint(
        "POST",
        "/api/v1/indicators/{indicator_id}/progress",
        only({"anonymous": 401, "cted_analyst": 201, "entity_focal_point": 201}, 403),
        path_of("/api/v1/indicators/{}/progress", "entity_indicator", "POST", {"value": 1}),
        relation="a measure in the entity's charge",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points",
        CONTACT_READERS,
        fixed("GET", "/api/v1/contact-points"),
        client_ok=200,
        client_scope="contacts:read",
    ),
    Endpoint(
        "POST",
        "/api/v1/contact-points",
        CONTACT_CREATORS,
        _create_own_contact,
        relation="own state",
    ),
    Endpoint(
        "POST",
        "/api/v1/contact-points",
        CONTACT_CREATORS | {"state_focal_point": 403},
        _create_other_contact,
        relation="other state",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/export",
        CONTACT_READERS,
        fixed("GET", "/api/v1/contact-points/export?format=vcard"),
        client_ok=200,
        client_scope="contacts:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/coverage",
        ANALYST_ONLY,
        fixed("GET", "/api/v1/contact-points/coverage"),
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_READERS | {"entity_focal_point": 404},
        path_of("/api/v1/contact-points/{}", "own_contact"),
        relation="own state, audience secretariat",
        client_ok=404,
        client_scope="contacts:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_READERS | {"state_focal_point": 404},
        path_of("/api/v1/contact-points/{}", "compact_contact"),
        relation="other state, audience compact",
        client_ok=200,
        client_scope="contacts:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_READERS,
        path_of("/api/v1/contact-points/{}", "member_states_contact"),
        relation="other state, audience member_states",
        client_ok=200,
        client_scope="contacts:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_READERS | {"state_focal_point": 404, "entity_focal_point": 404},
        path_of("/api/v1/contact-points/{}", "secretariat_contact"),
        relation="other state, audience secretariat",
        client_ok=404,
        client_scope="contacts:read",
    ),
    Endpoint(
        "PATCH",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_WRITERS,
        path_of("/api/v1/contact-points/{}", "own_contact", "PATCH", {"notes": "By phone."}),
        relation="own state",
    ),
    Endpoint(
        "PATCH",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_WRITERS | {"state_focal_point": 404},
        path_of(
            "/api/v1/contact-points/{}", "member_states_contact", "PATCH", {"notes": "By phone."}
        ),
        relation="other state, audience member_states",
    ),
    Endpoint(
        "DELETE",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_RETIRERS,
        _retire_own_contact,
        relation="own state",
    ),
    Endpoint(
        "DELETE",
        "/api/v1/contact-points/{contact_id}",
        CONTACT_RETIRERS | {"state_focal_point": 404},
        _retire_other_contact,
        relation="other state, audience member_states",
    ),
    Endpoint(
        "POST",
        "/api/v1/contact-points/{contact_id}/confirm",
        CONTACT_WRITERS,
        path_of("/api/v1/contact-points/{}/confirm", "own_contact", "POST"),
        relation="own state",
    ),
    Endpoint(
        "POST",
        "/api/v1/contact-points/{contact_id}/confirm",
        CONTACT_WRITERS | {"state_focal_point": 404},
        path_of("/api/v1/contact-points/{}/confirm", "member_states_contact", "POST"),
        relation="other state, audience member_states",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/{contact_id}/history",
        CONTACT_HISTORIANS,
        path_of("/api/v1/contact-points/{}/history", "own_contact"),
        relation="own state",
    ),
    Endpoint(
        "GET",
        "/api/v1/contact-points/{contact_id}/history",
        CONTACT_HISTORIANS | {"state_focal_point": 404},
        path_of("/api/v1/contact-points/{}/history", "member_states_contact"),
        relation="other state, audience member_states",
    ),
    Endpoint(
        "GET",
        "/api/v1/activities",
        ACTIVITY_READERS,
        fixed("GET", "/api/v1/activities"),
        client_ok=200,
        client_scope="activities:read",
    ),
    Endpoint(
        "POST",
        "/api/v1/activities",
        ACTIVITY_CREATORS,
        _create_own_activity,
        relation="led by the entity",
    ),
    Endpoint(
        "POST",
        "/api/v1/activities",
        ACTIVITY_CREATORS | {"entity_focal_point": 403},
        _create_others_activity,
        relation="led by another entity",
    ),
    Endpoint(
        "GET",
        "/api/v1/activities/export",
        ACTIVITY_READERS,
        fixed("GET", "/api/v1/activities/export?format=csv"),
        client_ok=200,
        client_scope="activities:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/activities/{activity_id}",
        ACTIVITY_READERS,
        path_of("/api/v1/activities/{}", "led_activity"),
        relation="own state, not sharing, led by the entity",
        client_ok=200,
        client_scope="activities:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/activities/{activity_id}",
        ACTIVITY_READERS | {"state_focal_point": 404},
        path_of("/api/v1/activities/{}", "shared_activity"),
        relation="other state, sharing, led by another entity",
        client_ok=200,
        client_scope="activities:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/activities/{activity_id}",
        ACTIVITY_READERS | {"state_focal_point": 404, "entity_focal_point": 404},
        path_of("/api/v1/activities/{}", "unshared_activity"),
        relation="other state, not sharing, led by another entity",
        client_ok=404,
        client_scope="activities:read",
    ),
    Endpoint(
        "PATCH",
        "/api/v1/activities/{activity_id}",
        ACTIVITY_WRITERS,
        path_of("/api/v1/activities/{}", "led_activity", "PATCH", {"description": "Changed."}),
        relation="led by the entity",
    ),
    Endpoint(
        "PATCH",
        "/api/v1/activities/{activity_id}",
        ACTIVITY_WRITERS | {"entity_focal_point": 404},
        path_of("/api/v1/activities/{}", "shared_activity", "PATCH", {"description": "Changed."}),
        relation="other state, sharing, led by another entity",
    ),
    Endpoint(
        "GET",
        "/api/v1/coordination/matrix",
        ACTIVITY_READERS,
        fixed("GET", "/api/v1/coordination/matrix"),
        client_ok=200,
        client_scope="activities:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/coordination/entities",
        ACTIVITY_READERS,
        fixed("GET", "/api/v1/coordination/entities"),
        client_ok=200,
        client_scope="activities:read",
    ),
    Endpoint(
        "GET",
        "/api/v1/changes",
        CHANGE_READERS,
        fixed("GET", "/api/v1/changes?limit=5"),
        client_ok=200,
        client_scope=READ_SCOPES,
    ),
]

CASES = [
    pytest.param(
        endpoint,
        role,
        id=f"{endpoint.method} {endpoint.path}"
        + (f" ({endpoint.relation})" if endpoint.relation else "")
        + f" as {role}",
    )
    for endpoint in ENDPOINTS
    for role in ROLES + CLIENT_ROLES
    if endpoint.expected(role) is not None
]


async def _signed_in(world: World, role: str) -> httpx.AsyncClient:
    if role in CLIENT_ROLES:
        scope = role.removeprefix("client:")
        credentials = await make_api_client(world.database, org=world.entity_org, scopes=(scope,))
        return await bearer_http(world.app, credentials)
    org = {"state_focal_point": world.state_org, "entity_focal_point": world.entity_org}.get(
        role, world.secretariat
    )
    user = await make_user(world.database, org=org, roles=(role,))
    client = new_client(world.app)
    await sign_in(client, user.email)
    return client


@pytest.fixture(scope="session")
async def world(app: FastAPI, database: Database) -> AsyncIterator[World]:
    state_org = await make_org(database, kind="member_state")
    world = World(
        app,
        database,
        state_org,
        await make_org(database, kind="compact_entity"),
        await make_org(database, kind="secretariat"),
    )
    world.target_user = await make_user(database, org=state_org, roles=("state_focal_point",))
    for role in SIGNED_IN + CLIENT_ROLES:
        world.clients[role] = await _signed_in(world, role)
    world.api_client = str((await make_api_client(database, org=world.entity_org)).id)
    world.clients["anonymous"] = new_client(app)
    world.other_state = await make_org(database, kind="member_state")
    world.own_report = await _new_report(world)
    world.other_report = await _new_report(world, state=world.other_state)
    world.own_attachment = await _attach(world, world.own_report)
    world.compact_publication = await _consented(world, "compact")
    world.public_publication = await _consented(world, "public")
    world.third_state = await make_org(database, kind="member_state")
    await _assistance_world(world)
    await _contacts_world(world)
    await _planning_world(world)
    yield world
    for client in world.clients.values():
        await client.aclose()


def test_every_endpoint_has_matrix_rows(app: FastAPI) -> None:
    routes = {
        (method, route.path)
        for route in iter_api_routes(app.routes)
        for method in route.methods
        if not route.path.startswith("/portal")  # pages: tests/web
    }
    assert routes == {(endpoint.method, endpoint.path) for endpoint in ENDPOINTS}


@pytest.mark.parametrize(("endpoint", "role"), CASES)
async def test_matrix(world: World, endpoint: Endpoint, role: str) -> None:
    if endpoint.build is _upload:
        client = world.clients[role]
        response = await client.post(
            f"/api/v1/reports/{world.own_report}/attachments", files={"file": ("a.pdf", PDF)}
        )
        assert response.status_code == endpoint.expected(role), response.text
        return
    method, path, body = await endpoint.build(world, role)
    payload: dict[str, Any] = {"data": body} if endpoint.form else {"json": body}
    if endpoint.fresh_session and role != "anonymous":
        client = await _signed_in(world, role)
        try:
            response = await client.request(method, path, **payload)
        finally:
            await client.aclose()
    else:
        response = await world.clients[role].request(method, path, **payload)
    assert response.status_code == endpoint.expected(role), response.text


async def test_denials_are_audited_with_actor_and_reason(world: World) -> None:
    response = await world.clients["state_focal_point"].get("/api/v1/audit-events")
    assert response.status_code == 403
    me = (await world.clients["state_focal_point"].get("/api/v1/me")).json()
    denials = await audit_events(
        world.database, actor_user_id=uuid.UUID(me["id"]), outcome="denied", action="audit.read"
    )
    assert denials and '"status": 403' in denials[-1].details


async def test_anonymous_denials_are_audited(world: World) -> None:
    response = await world.clients["anonymous"].get("/api/v1/users")
    assert response.status_code == 401
    denials = await audit_events(world.database, request_id=response.headers["X-Request-ID"])
    assert [event.outcome for event in denials] == ["denied"]
