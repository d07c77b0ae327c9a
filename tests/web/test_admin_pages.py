"""Administration pages: users, organizations and API clients, as the API does them."""

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, func, select

from ctcp.core.db import Database
from ctcp.identity.models import User, UserRole
from ctcp.oauth.models import ApiClient
from ctcp.organizations.models import Organization
from tests.factories import (
    ApiClientCredentials,
    audit_events,
    make_api_client,
    make_org,
    make_user,
    new_client,
    oauth_http,
    request_token,
)
from tests.web.conftest import Reader, csrf_in, reader

ROLES = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
KIND_OF = {"state_focal_point": "member_state", "entity_focal_point": "compact_entity"}
STRONG = "Lantern-orbit-meadow-71"
SECRET = re.compile(r'id="client-secret">([^<]+)<')
INTERNALS = ("Traceback", "sqlalchemy", "IntegrityError", "asyncpg", "sqlite3", 'File "')


async def signed_in(app: FastAPI, database: Database, role: str, **kwargs: Any) -> Reader:
    return await reader(
        app, database, roles=(role,), kind=KIND_OF.get(role, "secretariat"), **kwargs
    )


async def admin_reader(app: FastAPI, database: Database) -> Reader:
    return await signed_in(app, database, "platform_admin")


async def count(database: Database, model: Any, *conditions: Any) -> int:
    async with database.sessionmaker() as session:
        statement = select(func.count()).select_from(model)
        for condition in conditions:
            statement = statement.where(condition)
        return int((await session.exec(statement)).one())


async def load_user(database: Database, user_id: uuid.UUID) -> User:
    async with database.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def roles_of(database: Database, user_id: uuid.UUID) -> set[str]:
    async with database.sessionmaker() as session:
        rows = await session.exec(select(UserRole.role).where(col(UserRole.user_id) == user_id))
        return set(rows.all())


async def load_client(database: Database, client_id: uuid.UUID) -> ApiClient:
    async with database.sessionmaker() as session:
        client = await session.get(ApiClient, client_id)
        assert client is not None
        return client


async def token_status(app: FastAPI, credentials: ApiClientCredentials) -> int:
    async with oauth_http(app) as http:
        return (await request_token(http, credentials)).status_code


# --- every page x every role ---------------------------------------------------------------


@dataclass
class Targets:
    user: User
    entity: Organization
    client: ApiClientCredentials


@pytest.fixture
async def targets(database: Database) -> Targets:
    entity = await make_org(database, kind="compact_entity")
    return Targets(
        user=await make_user(database, roles=("state_focal_point",)),
        entity=entity,
        client=await make_api_client(database, org=entity),
    )


ADMIN_ONLY = {role: 403 for role in ROLES} | {"platform_admin": 200}
MISSING = ADMIN_ONLY | {"platform_admin": 404}
EVERYONE = {role: 200 for role in ROLES}
# (method, path, form, expected status per role); a platform administrator's forms are sent
# incomplete (422: admitted, nothing written) except where the change is harmless.
PAGES: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
    ("GET", "/portal/admin/users", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/users?q=user-&active=true", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/users/new", {}, ADMIN_ONLY),
    ("POST", "/portal/admin/users/new", {"email": "x"}, ADMIN_ONLY | {"platform_admin": 422}),
    ("GET", "/portal/admin/users/{user}", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/users/{missing}", {}, MISSING),
    ("GET", "/portal/admin/users/{user}/active", {}, ADMIN_ONLY),
    ("POST", "/portal/admin/users/{user}/active", {}, ADMIN_ONLY | {"platform_admin": 422}),
    (
        "POST",
        "/portal/admin/users/{user}/roles",
        {"roles": "state_focal_point"},
        ADMIN_ONLY | {"platform_admin": 303},
    ),
    ("GET", "/portal/admin/organizations", {}, EVERYONE),
    ("GET", "/portal/admin/organizations?kind=compact_entity&q=T", {}, EVERYONE),
    ("GET", "/portal/admin/organizations/new", {}, ADMIN_ONLY),
    ("POST", "/portal/admin/organizations/new", {}, ADMIN_ONLY | {"platform_admin": 422}),
    ("GET", "/portal/admin/api-clients", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/api-clients?active=true", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/api-clients/new", {}, ADMIN_ONLY),
    ("POST", "/portal/admin/api-clients/new", {}, ADMIN_ONLY | {"platform_admin": 422}),
    ("GET", "/portal/admin/api-clients/{client}", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/api-clients/{missing}", {}, MISSING),
    ("GET", "/portal/admin/api-clients/{client}/disable", {}, ADMIN_ONLY),
    ("GET", "/portal/admin/api-clients/{client}/secret", {}, ADMIN_ONLY),
    (
        "POST",
        "/portal/admin/api-clients/{missing}/disable",
        {},
        ADMIN_ONLY | {"platform_admin": 404},
    ),
    (
        "POST",
        "/portal/admin/api-clients/{missing}/secret",
        {},
        ADMIN_ONLY | {"platform_admin": 404},
    ),
]


def _path(template: str, targets: Targets) -> str:
    return template.format(user=targets.user.id, client=targets.client.id, missing=uuid.uuid4())


async def _send(reader_: Reader, method: str, path: str, form: dict[str, Any]) -> httpx.Response:
    if method == "GET":
        return await reader_.get(path)
    return await reader_.post(path, form)


@pytest.mark.parametrize("role", ROLES)
async def test_every_page_answers_each_role_as_the_policy_says(
    app: FastAPI, database: Database, targets: Targets, role: str
) -> None:
    person = await signed_in(app, database, role)
    answers = {}
    for method, template, form, expected in PAGES:
        response = await _send(person, method, _path(template, targets), form)
        answers[f"{method} {template}"] = (response.status_code, expected[role])
        assert "<h1>" in response.text or response.status_code == 303
    assert {key: got for key, (got, _) in answers.items()} == {
        key: want for key, (_, want) in answers.items()
    }
    # Nothing a refused role sent changed the target.
    if role != "platform_admin":
        assert (await load_user(database, targets.user.id)).active
        assert (await load_client(database, targets.client.id)).active


async def test_anonymous_is_sent_to_sign_in(app: FastAPI, targets: Targets) -> None:
    async with new_client(app) as anonymous:
        for method, template, _, _ in PAGES:
            path = _path(template, targets)
            response = await anonymous.request(method, path, data={} if method == "POST" else None)
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/portal/sign-in?next=")
            if method == "GET":
                assert response.headers["location"].startswith("/portal/sign-in?next=/portal/admin")


# --- users -----------------------------------------------------------------------------------


async def test_create_user_with_an_mfa_role_then_they_must_enrol_at_sign_in(
    app: FastAPI, database: Database
) -> None:
    admin = await admin_reader(app, database)
    secretariat = await make_org(database, kind="secretariat")
    form = await admin.get("/portal/admin/users/new")
    assert form.status_code == 200
    assert 'name="roles" type="checkbox" value="auditor"' in form.text
    assert f'value="{secretariat.id}"' in form.text
    email = f"new-{uuid.uuid4().hex[:8]}@ctcp.example"
    created = await admin.post(
        "/portal/admin/users/new",
        {
            "email": email.upper(),
            "name": "New Auditor",
            "organization_id": str(secretariat.id),
            "password": STRONG,
            "roles": ["auditor"],
        },
    )
    assert created.status_code == 303, created.text
    async with database.sessionmaker() as session:
        user = (await session.exec(select(User).where(col(User.email) == email))).one()
    assert created.headers["location"] == f"/portal/admin/users/{user.id}"
    assert await roles_of(database, user.id) == {"auditor"}
    [event] = await audit_events(database, action="user.create", object_id=str(user.id))
    assert event.actor_user_id == admin.user.id
    page = await admin.get(created.headers["location"])
    assert page.status_code == 200
    assert "The user was created." in page.text and "New Auditor" in page.text
    assert "required at the next sign-in" in page.text
    assert STRONG not in page.text and "argon2" not in page.text
    # The new auditor signs in through the portal and is sent to MFA enrolment.
    async with new_client(app) as browser:
        sign_in_page = await browser.get("/portal/sign-in")
        answer = await browser.post(
            "/portal/sign-in",
            data={
                "csrf_token": csrf_in(sign_in_page.text),
                "email": email,
                "password": STRONG,
                "next": "/portal/audit",
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/mfa"
        assert (await browser.get("/portal/audit")).headers["location"] == "/portal/mfa"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid e-mail address."),
        ({"name": ""}, "name", "Fill in this field."),
        ({"organization_id": ""}, "organization_id", "Choose a value from the list."),
        ({"password": "short"}, "password", "The password is not accepted"),
        ({"password": "1qaz2wsx3edc"}, "password", "is too common"),
        ({"roles": ["cted_analyst"]}, "roles", "cannot be held in this organization"),
        ({"roles": ["wizard"]}, "roles", "Choose a value from the list."),
        ({"email": "bad", "password": "short"}, "password", "The password is not accepted"),
    ],
)
async def test_bad_user_form_comes_back_with_the_field_marked_and_nothing_written(
    app: FastAPI, database: Database, change: dict[str, Any], field: str, message: str
) -> None:
    admin = await admin_reader(app, database)
    state = await make_org(database)
    email = f"bad-{uuid.uuid4().hex[:8]}@ctcp.example"
    form = {
        "email": email,
        "name": "Someone",
        "organization_id": str(state.id),
        "password": STRONG,
        "roles": ["state_focal_point"],
    } | change
    response = await admin.post("/portal/admin/users/new", form)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert f'href="#{field}"' in response.text
    if "email" not in change:
        assert f'value="{email}"' in response.text  # typed values kept
    assert STRONG not in response.text  # a password is never sent back
    assert await count(database, User, col(User.organization_id) == state.id) == 0


async def test_duplicate_email_is_a_409_page_without_internals(
    app: FastAPI, database: Database
) -> None:
    admin = await admin_reader(app, database)
    existing = await make_user(database)
    before = await count(database, User)
    response = await admin.post(
        "/portal/admin/users/new",
        {
            "email": existing.email,
            "name": "Twin",
            "organization_id": str(existing.organization_id),
            "password": STRONG,
        },
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("text/html")
    assert "already exists" in response.text
    assert not any(word in response.text for word in INTERNALS)
    assert await count(database, User) == before


async def test_users_list_filters_narrow_the_list(app: FastAPI, database: Database) -> None:
    admin = await admin_reader(app, database)
    state = await make_org(database)
    first = await make_user(database, org=state, roles=("state_focal_point",))
    second = await make_user(database, org=state)
    listed = await admin.get(f"/portal/admin/users?organization_id={state.id}")
    assert listed.status_code == 200
    assert first.email in listed.text and second.email in listed.text
    by_role = await admin.get(
        f"/portal/admin/users?organization_id={state.id}&role=state_focal_point&active=&q="
    )
    assert first.email in by_role.text and second.email not in by_role.text
    by_text = await admin.get(f"/portal/admin/users?q={second.email}")
    assert second.email in by_text.text and first.email not in by_text.text
    bad = await admin.get("/portal/admin/users?organization_id=nope&role=wizard")
    assert bad.status_code == 422 and "Choose a value from the list." in bad.text
    assert await audit_events(database, action="user.list", actor_user_id=admin.user.id)


async def test_set_roles_from_the_user_page(app: FastAPI, database: Database) -> None:
    admin = await admin_reader(app, database)
    target = await make_user(database, roles=("cted_analyst",))
    page = await admin.get(f"/portal/admin/users/{target.id}")
    assert page.status_code == 200
    assert f'action="/portal/admin/users/{target.id}/roles"' in page.text
    assert 'value="state_focal_point"' not in page.text  # roles that fit a secretariat only
    response = await admin.post(
        f"/portal/admin/users/{target.id}/roles", {"roles": ["consent_officer", "cted_analyst"]}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/admin/users/{target.id}"
    assert await roles_of(database, target.id) == {"consent_officer", "cted_analyst"}
    [event] = await audit_events(database, action="user.roles.set", object_id=str(target.id))
    assert event.actor_user_id == admin.user.id
    # A role that does not fit the organization: refused, nothing changed.
    misfit = await admin.post(
        f"/portal/admin/users/{target.id}/roles", {"roles": ["state_focal_point"]}
    )
    assert misfit.status_code == 422
    assert await roles_of(database, target.id) == {"consent_officer", "cted_analyst"}
    # Nobody changes their own roles.
    own = await admin.get(f"/portal/admin/users/{admin.user.id}")
    assert "Nobody can change their own roles." in own.text
    refused = await admin.post(f"/portal/admin/users/{admin.user.id}/roles", {"roles": []})
    assert refused.status_code == 403
    assert await roles_of(database, admin.user.id) == {"platform_admin"}


async def test_deactivate_with_confirmation_ends_sessions_then_reactivate(
    app: FastAPI, database: Database
) -> None:
    admin = await admin_reader(app, database)
    target = await reader(app, database, roles=("state_focal_point",))
    assert (await target.get("/portal")).status_code == 200
    confirm = await admin.get(f"/portal/admin/users/{target.user.id}/active")
    assert confirm.status_code == 200
    assert "Deactivate the account" in confirm.text and 'value="false"' in confirm.text
    assert (await load_user(database, target.user.id)).active  # a GET changes nothing
    response = await admin.post(f"/portal/admin/users/{target.user.id}/active", {"active": "false"})
    assert response.status_code == 303
    assert not (await load_user(database, target.user.id)).active
    assert await audit_events(database, action="user.deactivate", object_id=str(target.user.id))
    after = await target.get("/portal")
    assert after.status_code == 303 and after.headers["location"].startswith("/portal/sign-in")
    page = await admin.get(f"/portal/admin/users/{target.user.id}")
    assert "Deactivated" in page.text and "Reactivate this account" in page.text
    again = await admin.post(f"/portal/admin/users/{target.user.id}/active", {"active": "true"})
    assert again.status_code == 303
    assert (await load_user(database, target.user.id)).active
    assert await audit_events(database, action="user.activate", object_id=str(target.user.id))
    # Nobody deactivates themselves.
    own = await admin.post(f"/portal/admin/users/{admin.user.id}/active", {"active": "false"})
    assert own.status_code == 403
    assert (await load_user(database, admin.user.id)).active


# --- organizations -----------------------------------------------------------------------------


async def test_create_organization_then_it_is_listed(app: FastAPI, database: Database) -> None:
    admin = await admin_reader(app, database)
    code = f"NEW{uuid.uuid4().hex[:6].upper()}"
    form = await admin.get("/portal/admin/organizations/new")
    assert form.status_code == 200 and 'name="code"' in form.text
    response = await admin.post(
        "/portal/admin/organizations/new",
        {"code": code.lower(), "name": "New Compact entity", "kind": "compact_entity"},
    )
    assert response.status_code == 303, response.text
    assert await count(database, Organization, col(Organization.code) == code) == 1
    events = await audit_events(database, action="organization.create")
    assert code in events[-1].details and events[-1].actor_user_id == admin.user.id
    listed = await admin.get(response.headers["location"])
    assert f"<td>{code}</td>" in listed.text and "New Compact entity" in listed.text
    by_kind = await admin.get(f"/portal/admin/organizations?kind=member_state&q={code}")
    assert by_kind.status_code == 200 and f"<td>{code}</td>" not in by_kind.text
    # Everyone with organization read sees the list, without the add button.
    focal = await signed_in(app, database, "state_focal_point")
    seen = await focal.get(f"/portal/admin/organizations?q={code}")
    assert seen.status_code == 200 and f"<td>{code}</td>" in seen.text
    assert "/portal/admin/organizations/new" not in seen.text
    duplicate = await admin.post(
        "/portal/admin/organizations/new",
        {"code": code, "name": "Again", "kind": "compact_entity"},
    )
    assert duplicate.status_code == 409
    assert not any(word in duplicate.text for word in INTERNALS)


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"code": "FRANCE", "name": "France", "kind": "member_state"}, "code"),
        ({"code": "1AB", "name": "Somewhere", "kind": "compact_entity"}, "code"),
        ({"code": "ABC", "name": "", "kind": "member_state"}, "name"),
        ({"code": "ABC", "name": "Somewhere", "kind": "planet"}, "kind"),
    ],
)
async def test_bad_organization_form_is_a_422_with_the_field(
    app: FastAPI, database: Database, form: dict[str, str], field: str
) -> None:
    admin = await admin_reader(app, database)
    before = await count(database, Organization)
    response = await admin.post("/portal/admin/organizations/new", form)
    assert response.status_code == 422
    assert f'href="#{field}"' in response.text
    assert await count(database, Organization) == before


# --- API clients -----------------------------------------------------------------------------


async def test_api_client_secret_is_shown_once_and_works_then_rotate_and_disable(
    app: FastAPI, database: Database
) -> None:
    admin = await admin_reader(app, database)
    entity = await make_org(database, kind="compact_entity")
    form = await admin.get("/portal/admin/api-clients/new")
    assert form.status_code == 200 and f'value="{entity.id}"' in form.text
    created = await admin.post(
        "/portal/admin/api-clients/new",
        {
            "organization_id": str(entity.id),
            "name": "Entity system",
            "scopes": ["publications:read", "needs:read"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    assert "shown only this once" in created.text
    [secret] = SECRET.findall(created.text)
    assert created.text.count(secret) == 1
    async with database.sessionmaker() as session:
        client = (
            await session.exec(select(ApiClient).where(col(ApiClient.organization_id) == entity.id))
        ).one()
    assert client.scopes.split() == ["needs:read", "publications:read"]
    credentials = ApiClientCredentials(client.id, client.client_id, secret, entity)
    assert await token_status(app, credentials) == 200
    [event] = await audit_events(database, action="api_client.create", object_id=str(client.id))
    assert event.actor_user_id == admin.user.id
    # Never shown again: not on its page, not in the list.
    page = await admin.get(f"/portal/admin/api-clients/{client.id}")
    assert page.status_code == 200 and client.client_id in page.text and secret not in page.text
    listed = await admin.get(f"/portal/admin/api-clients?organization_id={entity.id}")
    assert client.client_id in listed.text and secret not in listed.text
    # Rotate: a confirmation, then the new secret shown once; the old one dies.
    confirm = await admin.get(f"/portal/admin/api-clients/{client.id}/secret")
    assert confirm.status_code == 200 and "Replace the secret" in confirm.text
    rotated = await admin.post(f"/portal/admin/api-clients/{client.id}/secret")
    assert rotated.status_code == 200
    [new_secret] = SECRET.findall(rotated.text)
    assert new_secret != secret and rotated.text.count(new_secret) == 1
    assert await token_status(app, credentials) == 401
    credentials.secret = new_secret
    assert await token_status(app, credentials) == 200
    assert await audit_events(database, action="api_client.rotate_secret", object_id=str(client.id))
    # Disable: a confirmation, then the client cannot get a token any more.
    confirm = await admin.get(f"/portal/admin/api-clients/{client.id}/disable")
    assert confirm.status_code == 200 and "Disable" in confirm.text
    assert (await load_client(database, client.id)).active
    disabled = await admin.post(f"/portal/admin/api-clients/{client.id}/disable")
    assert disabled.status_code == 303
    assert disabled.headers["location"] == f"/portal/admin/api-clients/{client.id}"
    assert not (await load_client(database, client.id)).active
    assert await token_status(app, credentials) == 401
    assert await audit_events(database, action="api_client.disable", object_id=str(client.id))
    # A disabled client's secret cannot be rotated (409 page).
    conflict = await admin.post(f"/portal/admin/api-clients/{client.id}/secret")
    assert conflict.status_code == 409
    assert not any(word in conflict.text for word in INTERNALS)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"organization_id": ""}, "organization_id"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["everything"]}, "scopes"),
    ],
)
async def test_bad_api_client_form_is_a_422_and_writes_nothing(
    app: FastAPI, database: Database, change: dict[str, Any], field: str
) -> None:
    admin = await admin_reader(app, database)
    entity = await make_org(database, kind="compact_entity")
    form = {"organization_id": str(entity.id), "name": "System", "scopes": ["needs:read"]}
    response = await admin.post("/portal/admin/api-clients/new", form | change)
    assert response.status_code == 422
    assert f'href="#{field}"' in response.text
    assert await count(database, ApiClient, col(ApiClient.organization_id) == entity.id) == 0


async def test_api_client_for_a_member_state_is_refused(app: FastAPI, database: Database) -> None:
    admin = await admin_reader(app, database)
    state = await make_org(database)
    response = await admin.post(
        "/portal/admin/api-clients/new",
        {"organization_id": str(state.id), "name": "System", "scopes": ["needs:read"]},
    )
    assert response.status_code == 422
    assert await count(database, ApiClient, col(ApiClient.organization_id) == state.id) == 0


# --- CSRF ------------------------------------------------------------------------------------


async def test_every_post_without_the_csrf_token_is_refused_and_changes_nothing(
    app: FastAPI, database: Database, targets: Targets
) -> None:
    admin = await admin_reader(app, database)
    secretariat = await make_org(database, kind="secretariat")
    email = f"csrf-{uuid.uuid4().hex[:8]}@ctcp.example"
    code = f"CSRF{uuid.uuid4().hex[:6].upper()}"
    secret_hash = (await load_client(database, targets.client.id)).secret_hash
    clients_before = await count(database, ApiClient)
    posts: list[tuple[str, dict[str, Any]]] = [
        (
            "/portal/admin/users/new",
            {
                "email": email,
                "name": "X",
                "organization_id": str(secretariat.id),
                "password": STRONG,
            },
        ),
        (f"/portal/admin/users/{targets.user.id}/roles", {"roles": []}),
        (f"/portal/admin/users/{targets.user.id}/active", {"active": "false"}),
        (
            "/portal/admin/organizations/new",
            {"code": code, "name": "Some entity", "kind": "compact_entity"},
        ),
        (
            "/portal/admin/api-clients/new",
            {"organization_id": str(targets.entity.id), "name": "S", "scopes": ["needs:read"]},
        ),
        (f"/portal/admin/api-clients/{targets.client.id}/disable", {}),
        (f"/portal/admin/api-clients/{targets.client.id}/secret", {}),
    ]
    for path, form in posts:
        response = await admin.post_without_csrf(path, form)
        assert response.status_code == 403, path
        wrong = await admin.post_without_csrf(path, form | {"csrf_token": "forged"})
        assert wrong.status_code == 403, path
    assert await count(database, User, col(User.email) == email) == 0
    assert await roles_of(database, targets.user.id) == {"state_focal_point"}
    assert (await load_user(database, targets.user.id)).active
    assert await count(database, Organization, col(Organization.code) == code) == 0
    assert await count(database, ApiClient) == clients_before
    client = await load_client(database, targets.client.id)
    assert client.active and client.secret_hash == secret_hash
    assert await token_status(app, targets.client) == 200
