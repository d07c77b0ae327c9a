"""The portal's frame: sign-in, sign-out, languages, errors, security headers, CSRF."""

from fastapi import FastAPI

from ctcp.core.db import Database
from tests.factories import PASSWORD, make_user, new_client
from tests.web.conftest import csrf_in


async def test_sign_in_page_then_dashboard(app: FastAPI, database: Database) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    client = new_client(app)
    try:
        page = await client.get("/portal/sign-in")
        assert page.status_code == 200
        assert "<form" in page.text and 'name="email"' in page.text
        response = await client.post(
            "/portal/sign-in",
            data={
                "csrf_token": csrf_in(page.text),
                "email": user.email,
                "password": PASSWORD,
                "next": "/portal",
            },
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/portal"
        dashboard = await client.get("/portal")
        assert dashboard.status_code == 200, dashboard.text
        assert "Dashboard" in dashboard.text
    finally:
        await client.aclose()
