"""A sweep over every portal route, so a page added later cannot skip the basics.

The feature files test each page's answers per role with real data; this one asks
every route, for every role and for an anonymous visitor, the questions that must hold
everywhere: signed-out visitors go to the sign-in page, nothing answers 5xx, refusals
are HTML pages, and no POST is accepted without the form's CSRF token.
"""

import re
import uuid

from fastapi import FastAPI
from fastapi.routing import APIRoute

from ctcp.core.db import Database
from ctcp.core.routes import iter_api_routes
from tests.factories import audit_events, new_client
from tests.web.conftest import reader

ROLES = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)
PUBLIC = {"/portal/sign-in", "/portal/language/{code}"}


def _portal_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    return sorted(
        (
            (method, route)
            for route in iter_api_routes(app.routes)
            if route.path.startswith("/portal")
            for method in route.methods
        ),
        key=lambda pair: (pair[1].path, pair[0]),
    )


def _concrete(path: str) -> str:
    """A path template with made-up values: nothing with these ids exists."""
    return re.sub(
        r"\{[^}]+\}", lambda m: "fr" if m.group(0) == "{code}" else str(uuid.uuid4()), path
    )


async def test_the_portal_has_the_pages_the_issue_names(app: FastAPI) -> None:
    paths = {route.path for _, route in _portal_routes(app)}
    for expected in (
        "/portal",
        "/portal/sign-in",
        "/portal/mfa",
        "/portal/reports",
        "/portal/reports/{report_id}/consent",
        "/portal/publications",
        "/portal/needs",
        "/portal/requests",
        "/portal/offers",
        "/portal/plans",
        "/portal/contacts",
        "/portal/contacts/{contact_id}",
        "/portal/contacts/new",
        "/portal/contacts/coverage",
        "/portal/activities",
        "/portal/activities/{activity_id}",
        "/portal/activities/new",
        "/portal/activities/{activity_id}/edit",
        "/portal/coordination",
        "/portal/coordination/states/{code}",
        "/portal/coordination/charts/columns.svg",
        "/portal/coordination/charts/entities.svg",
        "/portal/coordination/states/{code}/timeline.svg",
        "/portal/admin/users",
        "/portal/admin/organizations",
        "/portal/admin/api-clients",
        "/portal/audit",
        "/portal/search",
    ):
        assert expected in paths, expected


async def test_signed_out_visitors_are_sent_to_sign_in(app: FastAPI) -> None:
    async with new_client(app) as anonymous:
        for method, route in _portal_routes(app):
            if route.path in PUBLIC:
                continue
            response = await anonymous.request(method, _concrete(route.path), data={})
            assert response.status_code == 303, (method, route.path, response.status_code)
            assert response.headers["location"].startswith("/portal/sign-in?next="), route.path


async def test_every_page_answers_every_role_without_a_server_error(
    app: FastAPI, database: Database
) -> None:
    for role in ROLES:
        kind = "compact_entity" if role == "entity_focal_point" else "member_state"
        person = await reader(app, database, roles=(role,), kind=kind)
        try:
            for method, route in _portal_routes(app):
                if method != "GET" or route.path in PUBLIC:
                    continue
                response = await person.get(_concrete(route.path))
                assert response.status_code in (200, 303, 403, 404, 422), (
                    role,
                    route.path,
                    response.status_code,
                )
                if response.status_code in (403, 404, 422):  # refusals are pages
                    assert response.headers["content-type"].startswith("text/html"), route.path
                    assert "Traceback" not in response.text
        finally:
            await person.client.aclose()


async def test_no_post_is_accepted_without_the_csrf_token(app: FastAPI, database: Database) -> None:
    for role in ROLES:
        kind = "compact_entity" if role == "entity_focal_point" else "member_state"
        person = await reader(app, database, roles=(role,), kind=kind)
        try:
            for method, route in _portal_routes(app):
                if method != "POST" or route.path == "/portal/sign-in":
                    continue
                response = await person.post_without_csrf(_concrete(route.path), {"x": "1"})
                assert response.status_code == 403, (role, route.path, response.status_code)
                assert response.headers["content-type"].startswith("text/html")
        finally:
            await person.client.aclose()
        refusals = [
            event
            for event in await audit_events(database, outcome="denied")
            if event.actor_user_id == person.user.id
        ]
        assert any('"reason": "csrf"' in event.details for event in refusals)
