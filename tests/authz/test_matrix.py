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

from ctcp.core.db import Database
from ctcp.core.routes import iter_api_routes
from ctcp.oauth.scopes import OAuthScope
from tests.factories import (
    PASSWORD,
    audit_events,
    bearer_http,
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
    own_report: str = ""
    other_report: str = ""
    compact_publication: str = ""
    public_publication: str = ""
    own_attachment: str = ""
    published_attachment: str = ""
    api_client: str = ""


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
    report_id = await _new_report(world, adopt=True, state=world.other_state)
    if audience == "compact":
        world.published_attachment = await _attach(world, report_id)
    officer = world.clients["consent_officer"]
    recorded = await officer.post(
        f"/api/v1/reports/{report_id}/consent",
        json={"scope": "full", "audience": audience, "reference": "NV/2026/1"},
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


async def _introspect(world: World, role: str) -> Request:
    return "POST", "https://ctcp.test/oauth/introspect", {"token": "ctcp_at_matrix"}


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
    client_scope: str = OAuthScope.PUBLICATIONS_READ.value
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
        if self.client_ok is not None and self.client_scope in ("*", role.removeprefix("client:")):
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
    yield world
    for client in world.clients.values():
        await client.aclose()


def test_every_endpoint_has_matrix_rows(app: FastAPI) -> None:
    routes = {
        (method, route.path) for route in iter_api_routes(app.routes) for method in route.methods
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
    response = await world.clients["anonymous"].get(
        "/api/v1/users", headers={"X-Request-ID": "matrix-anon-1"}
    )
    assert response.status_code == 401
    denials = await audit_events(world.database, request_id="matrix-anon-1")
    assert [event.outcome for event in denials] == ["denied"]
