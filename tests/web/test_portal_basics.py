"""The portal's frame: sign-in, sign-out, MFA enrolment, languages, errors, headers, CSRF."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.core.routes import PUBLIC
from ctcp.identity.models import User
from ctcp.web import i18n
from tests.factories import PASSWORD, audit_events, make_publication, make_user, new_client, unique
from tests.web.conftest import csrf_in, reader

ROLES = (
    "state_focal_point",
    "entity_focal_point",
    "cted_analyst",
    "consent_officer",
    "platform_admin",
    "auditor",
)


async def _portal_sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, otp: str = ""
) -> httpx.Response:
    page = await client.get("/portal/sign-in")
    return await client.post(
        "/portal/sign-in",
        data={
            "csrf_token": csrf_in(page.text),
            "email": email,
            "password": password,
            "otp": otp,
            "next": "/portal",
        },
    )


async def test_sign_in_page_then_dashboard(app: FastAPI, database: Database) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    async with new_client(app) as client:
        page = await client.get("/portal/sign-in")
        assert page.status_code == 200
        assert 'name="email"' in page.text and 'autocomplete="current-password"' in page.text
        response = await _portal_sign_in(client, user.email)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/portal"
        assert "HttpOnly" in response.headers["set-cookie"]
        dashboard = await client.get("/portal")
        assert dashboard.status_code == 200
        assert "<h1>Dashboard</h1>" in dashboard.text
    events = await audit_events(database, action="session.create")
    assert any(event.actor_user_id == user.id for event in events)


async def test_sign_in_refuses_a_form_without_its_csrf_token(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    async with new_client(app) as client:
        await client.get("/portal/sign-in")
        data = {"email": user.email, "password": PASSWORD}
        refused = await client.post("/portal/sign-in", data=data)
        assert refused.status_code == 403
        assert "text/html" in refused.headers["content-type"]
        assert "form has expired" in refused.text
        assert "ctcp_session" not in refused.headers.get("set-cookie", "")
        forged = await client.post("/portal/sign-in", data={**data, "csrf_token": "x" * 43})
        assert forged.status_code == 403
    async with new_client(app) as stranger:
        # A token from another browser does not fit this browser's pre-session cookie.
        async with new_client(app) as other:
            token = csrf_in((await other.get("/portal/sign-in")).text)
        await stranger.get("/portal/sign-in")
        assert (
            await stranger.post("/portal/sign-in", data={**data, "csrf_token": token})
        ).status_code == 403


async def test_wrong_password_and_missing_fields_are_shown_on_the_form(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    async with new_client(app) as client:
        wrong = await _portal_sign_in(client, user.email, password="not-the-password")
        assert wrong.status_code == 401
        assert "is not correct" in wrong.text
        assert f'value="{user.email}"' in wrong.text  # the e-mail is kept, never the password
        assert "not-the-password" not in wrong.text
        empty = await _portal_sign_in(client, "", password="")
        assert empty.status_code == 422
        assert "Enter your e-mail address." in empty.text


async def test_throttled_sign_in_is_explained(settings: Settings, database: Database) -> None:
    app = create_app(settings.model_copy(update={"login_max_failures": 2}))
    async with app.router.lifespan_context(app):
        user = await make_user(database, roles=("state_focal_point",))
        async with new_client(app) as client:
            for _ in range(2):
                await _portal_sign_in(client, user.email, password="wrong-password-1")
            throttled = await _portal_sign_in(client, user.email)
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert re.search(r"Try again in \d+ minutes?\.", throttled.text)


async def test_enrolled_user_is_asked_for_the_code(app: FastAPI, database: Database) -> None:
    user = await make_user(database, roles=("auditor",))
    async with new_client(app) as client:
        without_code = await _portal_sign_in(client, user.email)
        assert without_code.status_code == 401
        assert "six-digit code" in without_code.text


async def test_first_sign_in_of_a_role_requiring_mfa_goes_through_enrolment(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("consent_officer",), mfa=False)
    async with new_client(app) as client:
        signed = await _portal_sign_in(client, user.email)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/portal/mfa"
        # Every other page sends them back to enrolment until it is done.
        gated = await client.get("/portal")
        assert gated.status_code == 303 and gated.headers["location"] == "/portal/mfa"
        intro = await client.get("/portal/mfa")
        assert "Your role requires two-step verification" in intro.text
        token = csrf_in(intro.text)
        started = await client.post("/portal/mfa/start", data={"csrf_token": token})
        assert started.status_code == 200
        assert "<svg" in started.text and "<script" not in started.text
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', started.text)
        assert secret is not None
        wrong = await client.post(
            "/portal/mfa/confirm", data={"csrf_token": token, "otp": "000000"}
        )
        assert wrong.status_code == 422
        assert "text/html" in wrong.headers["content-type"]
        # The enrolment started is shown again, with the same key, to finish it.
        again = await client.get("/portal/mfa")
        assert f'id="totp-secret">{secret.group(1)}<' in again.text
        code = pyotp.TOTP(secret.group(1)).at(clock.now())
        done = await client.post("/portal/mfa/confirm", data={"csrf_token": token, "otp": code})
        assert done.status_code == 200
        assert len(re.findall(r"<li><code>", done.text)) == 10
        assert (await client.get("/portal")).status_code == 200
    async with database.transaction() as session:
        stored = await session.get(User, user.id)
        assert stored is not None and stored.mfa_enabled_at is not None


async def test_dashboard_for_every_role_and_anonymous(app: FastAPI, database: Database) -> None:
    for role in ROLES:
        person = await reader(
            app,
            database,
            roles=(role,),
            kind="compact_entity" if role.startswith("entity") else "member_state",
        )
        response = await person.get("/portal")
        assert response.status_code == 200, (role, response.text[:500])
        assert "<h1>Dashboard</h1>" in response.text
        await person.client.aclose()
    async with new_client(app) as anonymous:
        response = await anonymous.get("/portal")
        assert response.status_code == 303
        assert response.headers["location"] == "/portal/sign-in?next=/portal"


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    app: FastAPI, database: Database
) -> None:
    person = await reader(app, database, roles=("state_focal_point",))
    refused = await person.post_without_csrf("/portal/sign-out")
    assert refused.status_code == 403
    assert (await person.get("/portal")).status_code == 200
    signed_out = await person.post("/portal/sign-out")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/portal/sign-in"
    notice = await person.get("/portal/sign-in")
    assert "You have signed out." in notice.text
    assert (await person.get("/portal")).status_code == 303
    await person.client.aclose()


async def test_expired_session_returns_to_sign_in_with_a_message(
    app: FastAPI, database: Database
) -> None:
    person = await reader(app, database, roles=("state_focal_point",))
    clock.advance(timedelta(minutes=31))
    response = await person.get("/portal?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/sign-in?next=/portal%3Fx%3D1&expired=1"
    page = await person.get(response.headers["location"])
    assert "Your session has expired" in page.text
    await person.client.aclose()


async def test_security_headers_on_pages(app: FastAPI) -> None:
    async with new_client(app) as client:
        response = await client.get("/portal/sign-in")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "script-src" not in csp.replace("default-src", "")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script" not in response.text
    assert " style=" not in response.text


async def test_hsts_in_production_over_https(settings: Settings) -> None:
    # The test database's role is a superuser, which production refuses unless allowed.
    production = settings.model_copy(
        update={"environment": "production", "allow_unsafe_database_role": True}
    )
    app = create_app(production)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://ctcp.test") as client:
            response = await client.get("/portal/sign-in")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_language_from_browser_cookie_and_switcher(app: FastAPI) -> None:
    async with new_client(app) as client:
        page = await client.get("/portal/sign-in", headers={"Accept-Language": "fr-CH, en;q=0.5"})
        assert '<html lang="fr" dir="ltr">' in page.text
        english = await client.get("/portal/sign-in", headers={"Accept-Language": "de, en;q=0.8"})
        assert '<html lang="en"' in english.text
        switched = await client.get("/portal/language/en?next=/portal/sign-in")
        assert switched.status_code == 303 and switched.headers["location"] == "/portal/sign-in"
        page = await client.get("/portal/sign-in", headers={"Accept-Language": "fr"})
        assert '<html lang="en"' in page.text  # the choice wins over the browser
        unknown = await client.get("/portal/language/xx?next=https://evil.example/")
        assert unknown.headers["location"] == "/portal"  # never another site
        assert "ctcp_lang" not in unknown.headers.get("set-cookie", "")


async def test_a_forged_notice_is_not_shown(app: FastAPI) -> None:
    async with new_client(app) as client:
        client.cookies.set("ctcp_notice", "IkNhbGwgKzEgNTU1Ig.forged", path="/portal")
        page = await client.get("/portal/sign-in")
    assert "Call +1 555" not in page.text


async def test_errors_are_html_pages_without_internals(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/portal/test-crash", dependencies=[PUBLIC])
    async def crash() -> None:
        raise RuntimeError("secret internals: /etc/ctcp password=hunter2")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ctcp.test") as client:
            missing = await client.get("/portal/no-such-page")
            crashed = await client.get("/portal/test-crash")
            api_missing = await client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "Page not found" in missing.text
    assert crashed.status_code == 500
    assert "text/html" in crashed.headers["content-type"]
    assert "Something went wrong" in crashed.text
    assert "hunter2" not in crashed.text and "RuntimeError" not in crashed.text
    assert "Traceback" not in crashed.text
    assert api_missing.headers["content-type"] == "application/problem+json"


async def test_templates_are_ready_for_right_to_left(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "LANGUAGES", {**i18n.LANGUAGES, "ar": "العربية"})
    async with new_client(app) as client:
        page = await client.get("/portal/sign-in", headers={"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in page.text
    assert '<span aria-current="true" lang="ar">العربية</span>' in page.text


def test_dates_and_numbers_follow_the_locale() -> None:
    moment = datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert i18n.Formatter("en").date(date(2026, 3, 1)) == "Mar 1, 2026"
    assert i18n.Formatter("fr").date(date(2026, 3, 1)) == "1 mars 2026"
    assert i18n.Formatter("fr").datetime(moment).startswith("1 mars 2026")
    assert i18n.Formatter("en").number(1234567.5) == "1,234,567.5"
    assert i18n.Formatter("fr").number(1234567.5).replace("\u202f", " ") == "1 234 567,5"
    assert i18n.Formatter("en").money(Decimal("25000"), "USD") == "$25,000.00"


async def test_state_dashboard_shows_consent_status_of_its_reports(
    app: FastAPI, database: Database
) -> None:
    title = unique("Dashboard visit ")
    published = await make_publication(app, database, title=title)
    person = await reader(app, database, roles=("state_focal_point",), org=published.state)
    page = await person.get("/portal")
    consent_panel = page.text.split('id="panel-consent"')[1].split("</section>")[0]
    assert title in consent_panel and "badge-full" in consent_panel
    withdrawn = await published.officer.post(
        f"/api/v1/reports/{published.report_id}/consent/withdraw", json={"reason": "Stop."}
    )
    assert withdrawn.status_code == 201, withdrawn.text
    page = await person.get("/portal")
    consent_panel = page.text.split('id="panel-consent"')[1].split("</section>")[0]
    assert "badge-withdrawn" in consent_panel and "badge-full" not in consent_panel
    await person.client.aclose()
    for client in (published.analyst, published.officer):
        await client.aclose()


async def test_sign_out_works_from_an_error_page(app: FastAPI, database: Database) -> None:
    person = await reader(app, database, roles=("state_focal_point",))
    missing = await person.get(f"/portal/needs/{uuid.uuid4()}")
    assert missing.status_code == 404
    token = csrf_in(missing.text)
    signed_out = await person.client.post("/portal/sign-out", data={"csrf_token": token})
    assert signed_out.status_code == 303
    assert (await person.get("/portal")).status_code == 303
    await person.client.aclose()


async def test_anonymous_posts_that_are_not_forms_are_refused(app: FastAPI) -> None:
    async with new_client(app) as client:
        await client.get("/portal/sign-in")
        for content_type in ("text/plain", "application/json"):
            response = await client.post(
                "/portal/sign-in", content=b"email=a", headers={"content-type": content_type}
            )
            assert response.status_code == 403, content_type


async def test_a_refusal_inside_a_page_is_audited_once(app: FastAPI, database: Database) -> None:
    person = await reader(app, database, roles=("cted_analyst",), kind="secretariat")
    for path in ("needs", "requests", "plans"):
        missing = uuid.uuid4()
        response = await person.get(f"/portal/{path}/{missing}")
        assert response.status_code == 404
        denials = await audit_events(database, object_id=str(missing))
        assert len(denials) == 1, [(event.action, event.outcome) for event in denials]
    await person.client.aclose()


async def test_the_language_switch_keeps_the_page_and_its_filters(
    app: FastAPI, database: Database
) -> None:
    person = await reader(app, database, roles=("state_focal_point",))
    page = await person.get("/portal/needs?status=open")
    assert 'href="/portal/language/fr?next=/portal/needs%3Fstatus%3Dopen"' in page.text
    await person.client.aclose()


async def test_refusals_before_the_app_are_pages_for_a_browser(
    app: FastAPI, database: Database
) -> None:
    person = await reader(app, database, roles=("state_focal_point",))
    browser = {"accept": "text/html,application/xhtml+xml", "origin": "https://evil.example"}
    refused = await person.client.post(
        "/portal/sign-out", data={"csrf_token": person.csrf}, headers=browser
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "another web origin" in refused.text
    api = await person.client.post(
        "/portal/sign-out",
        data={"csrf_token": person.csrf},
        headers={"origin": "https://evil.example"},
    )
    assert api.headers["content-type"] == "application/problem+json"
    await person.client.aclose()
