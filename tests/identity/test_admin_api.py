"""User and organization administration, with separation of duties."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.core.db import Database
from tests.factories import PASSWORD, audit_events, make_org, make_user, new_client, sign_in

STRONG = "Lantern-orbit-meadow-71"


@pytest.fixture
async def admin(app: FastAPI, database: Database) -> httpx.AsyncClient:
    user = await make_user(database, roles=("platform_admin",))
    client = new_client(app)
    await sign_in(client, user.email)
    client.user = user  # type: ignore[attr-defined]
    return client


async def test_create_user_then_list_and_read_it(
    admin: httpx.AsyncClient, database: Database
) -> None:
    org = await make_org(database, kind="member_state")
    created = await admin.post(
        "/api/v1/users",
        json={
            "email": "Focal.Point@Gov.example",
            "name": "Focal Point",
            "organization_id": str(org.id),
            "password": STRONG,
            "roles": ["state_focal_point"],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "focal.point@gov.example" and body["roles"] == ["state_focal_point"]
    assert "password" not in created.text and "argon2" not in created.text
    listed = await admin.get("/api/v1/users", params={"organization_id": str(org.id)})
    assert [u["id"] for u in listed.json()["items"]] == [body["id"]]
    assert (await admin.get(f"/api/v1/users/{body['id']}")).json()["name"] == "Focal Point"
    events = await audit_events(database, object_id=body["id"])
    assert [e.action for e in events] == ["user.create", "user.read"]
    assert events[0].actor_user_id == admin.user.id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"password": "short"}, 422),
        ({"password": "1qaz2wsx3edc"}, 422),
        ({"roles": ["cted_analyst"]}, 422),  # does not fit a member_state
        ({"roles": ["wizard"]}, 422),
        ({"email": "not-an-email"}, 422),
        ({"organization_id": "00000000-0000-0000-0000-000000000000"}, 422),
        ({"unexpected": True}, 422),
    ],
)
async def test_create_user_refuses_bad_input_and_writes_nothing(
    admin: httpx.AsyncClient, database: Database, change: dict[str, object], status: int
) -> None:
    org = await make_org(database, kind="member_state")
    body = {
        "email": "refused-user@ctcp.example",
        "name": "Refused",
        "organization_id": str(org.id),
        "password": STRONG,
        "roles": [],
    } | change
    response = await admin.post("/api/v1/users", json=body)
    assert response.status_code == status
    listed = await admin.get("/api/v1/users", params={"q": "refused-user"})
    assert listed.json()["items"] == []


async def test_duplicate_email_is_409(admin: httpx.AsyncClient, database: Database) -> None:
    user = await make_user(database)
    org = await make_org(database)
    response = await admin.post(
        "/api/v1/users",
        json={
            "email": user.email,
            "name": "Twin",
            "organization_id": str(org.id),
            "password": STRONG,
        },
    )
    assert response.status_code == 409


async def test_user_list_filters_and_paginates(
    admin: httpx.AsyncClient, database: Database
) -> None:
    org = await make_org(database, kind="compact_entity")
    emails = sorted(
        [
            (await make_user(database, org=org, roles=("entity_focal_point",))).email
            for _ in range(5)
        ]
    )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"organization_id": str(org.id), "limit": 2, "role": "entity_focal_point"}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/api/v1/users", params=params)).json()
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == emails
    none = await admin.get(
        "/api/v1/users", params={"organization_id": str(org.id), "role": "auditor"}
    )
    assert none.json() == {"items": [], "next_cursor": None}
    bad = await admin.get("/api/v1/users", params={"cursor": "garbage!!"})
    assert bad.status_code == 422
    too_big = await admin.get("/api/v1/users", params={"limit": 201})
    assert too_big.status_code == 422


async def test_deactivation_ends_sessions_and_reactivation_restores_sign_in(
    app: FastAPI, admin: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as victim:
        await sign_in(victim, user.email)
        response = await admin.patch(f"/api/v1/users/{user.id}", json={"active": False})
        assert response.status_code == 200 and response.json()["active"] is False
        assert (await victim.get("/api/v1/me")).status_code == 401
    async with new_client(app) as client:
        refused = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
        assert refused.status_code == 401
    assert (await admin.patch(f"/api/v1/users/{user.id}", json={"active": True})).json()[
        "active"
    ] is True
    async with new_client(app) as client:
        await sign_in(client, user.email)
    actions = [
        e.action
        for e in await audit_events(database, object_id=str(user.id))
        if e.action.startswith("user.")
    ]
    assert actions == ["user.deactivate", "user.activate"]


async def test_roles_must_fit_the_organization(
    admin: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, kind="compact_entity", roles=("entity_focal_point",))
    bad = await admin.put(f"/api/v1/users/{user.id}/roles", json={"roles": ["state_focal_point"]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "roles"]
    good = await admin.put(f"/api/v1/users/{user.id}/roles", json={"roles": []})
    assert good.status_code == 200 and good.json()["roles"] == []
    events = await audit_events(database, object_id=str(user.id), action="user.roles.set")
    assert '"before": ["entity_focal_point"]' in events[-1].details


async def test_nobody_changes_their_own_roles(admin: httpx.AsyncClient) -> None:
    me = (await admin.get("/api/v1/me")).json()
    response = await admin.put(
        f"/api/v1/users/{me['id']}/roles", json={"roles": ["platform_admin", "auditor"]}
    )
    assert response.status_code == 403


async def test_the_last_active_admin_cannot_lose_the_role_or_be_deactivated(
    fresh_database_url: str,
) -> None:
    from ctcp.audit.service import AuditContext
    from ctcp.core.errors import ConflictError
    from ctcp.identity import service

    database = Database(fresh_database_url)
    only_admin = await make_user(database, roles=("platform_admin",))
    for change in ("roles", "deactivate"):
        with pytest.raises(ConflictError):
            async with database.transaction() as session:
                account = await service.load_account(session, user_id=only_admin.id)
                assert account is not None
                if change == "roles":
                    await service.set_roles(
                        session, account=account, roles=[], context=AuditContext()
                    )
                else:
                    await service.set_active(
                        session, user=account.user, active=False, context=AuditContext()
                    )
    await database.dispose()


async def test_two_admins_removing_each_other_at_once_leave_one(
    fresh_database_url: str, settings: object
) -> None:
    import asyncio

    from ctcp.app import create_app

    isolated = create_app(settings.model_copy(update={"database_url": fresh_database_url}))  # type: ignore[attr-defined]
    database = Database(fresh_database_url)
    first = await make_user(database, roles=("platform_admin",))
    second = await make_user(database, roles=("platform_admin",))
    async with isolated.router.lifespan_context(isolated):
        a, b = new_client(isolated), new_client(isolated)
        await sign_in(a, first.email)
        await sign_in(b, second.email)
        responses = await asyncio.gather(
            a.put(f"/api/v1/users/{second.id}/roles", json={"roles": []}),
            b.put(f"/api/v1/users/{first.id}/roles", json={"roles": []}),
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 200 and statuses[1] in (403, 409), statuses
        remaining = [
            user
            for user, client in ((first, a), (second, b))
            if (await client.get("/api/v1/users")).status_code == 200
        ]
        assert len(remaining) == 1
        await a.aclose()
        await b.aclose()
    await database.dispose()


async def test_platform_admin_reads_no_audit_and_auditor_no_users(
    admin: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    assert (await admin.get("/api/v1/audit-events")).status_code == 403
    auditor = await make_user(database, roles=("auditor",))
    async with new_client(app) as client:
        await sign_in(client, auditor.email)
        assert (await client.get("/api/v1/users")).status_code == 403


async def test_organizations_filter_by_kind_and_text(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        "/api/v1/organizations",
        json={
            "code": "ZZTESTORG",
            "name": "Zebra Testing Organisation",
            "kind": "compact_entity",
            "name_fr": "Organisation zèbre",
        },
    )
    assert created.status_code == 201
    assert (
        await admin.post(
            "/api/v1/organizations",
            json={"code": "ZZTESTORG", "name": "Again", "kind": "compact_entity"},
        )
    ).status_code == 409
    assert (
        await admin.post(
            "/api/v1/organizations",
            json={"code": "ZZLONG", "name": "Not a State code", "kind": "member_state"},
        )
    ).status_code == 422
    assert (
        await admin.post(
            "/api/v1/organizations",
            json={"code": "lower", "name": "Bad code", "kind": "compact_entity"},
        )
    ).status_code == 422
    found = await admin.get(
        "/api/v1/organizations", params={"kind": "compact_entity", "q": "zèbre"}
    )
    assert [o["code"] for o in found.json()["items"]] == ["ZZTESTORG"]
    assert (await admin.get("/api/v1/organizations", params={"kind": "planet"})).status_code == 422


@pytest.mark.parametrize(
    "roles",
    [
        ["auditor", "cted_analyst"],
        ["auditor", "platform_admin"],
        ["auditor", "entity_focal_point"],
        ["platform_admin", "cted_analyst"],
        ["platform_admin", "consent_officer"],
        ["platform_admin", "entity_focal_point"],
    ],
)
async def test_roles_that_separation_of_duties_keeps_apart_are_422_and_audited(
    admin: httpx.AsyncClient, database: Database, roles: list[str]
) -> None:
    secretariat = await make_org(database, kind="secretariat")
    user = await make_user(database, org=secretariat, roles=("entity_focal_point",))
    refused = await admin.put(f"/api/v1/users/{user.id}/roles", json={"roles": roles})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "roles"]
    assert (await admin.get(f"/api/v1/users/{user.id}")).json()["roles"] == ["entity_focal_point"]
    email = f"sod-{secretariat.code.lower()}@ctcp.example"
    created = await admin.post(
        "/api/v1/users",
        json={
            "email": email,
            "name": "Two hats",
            "organization_id": str(secretariat.id),
            "password": STRONG,
            "roles": roles,
        },
    )
    assert created.status_code == 422, created.text
    listed = await admin.get("/api/v1/users", params={"organization_id": str(secretariat.id)})
    assert [u["id"] for u in listed.json()["items"]] == [str(user.id)]
    denials = [
        e
        for e in await audit_events(database, outcome="denied")
        if e.action in ("user.roles.set", "user.create") and str(sorted(roles)[0]) in e.details
    ]
    assert {e.action for e in denials} >= {"user.roles.set", "user.create"}


async def test_separation_of_duties_allows_what_it_does_not_forbid(
    admin: httpx.AsyncClient, database: Database, app: FastAPI, settings: Any
) -> None:
    secretariat = await make_org(database, kind="secretariat")
    user = await make_user(database, org=secretariat, roles=("entity_focal_point",))
    both = ["consent_officer", "cted_analyst"]
    allowed = await admin.put(f"/api/v1/users/{user.id}/roles", json={"roles": both})
    assert allowed.status_code == 200 and allowed.json()["roles"] == both
    assert (
        await admin.put(f"/api/v1/users/{user.id}/roles", json={"roles": ["auditor"]})
    ).status_code == 200
    # An operator may let administrators hold content roles; auditors still hold none.
    lenient = create_app(settings.model_copy(update={"admin_may_hold_content_roles": True}))
    async with lenient.router.lifespan_context(lenient):
        other_admin = new_client(lenient)
        await sign_in(other_admin, (await make_user(database, roles=("platform_admin",))).email)
        path = f"/api/v1/users/{user.id}/roles"
        mixed = await other_admin.put(path, json={"roles": ["platform_admin", "cted_analyst"]})
        assert mixed.status_code == 200, mixed.text
        auditing = await other_admin.put(path, json={"roles": ["auditor", "cted_analyst"]})
        assert auditing.status_code == 422
