"""Device cookies (OWASP): nobody without the owner's cookie can lock the owner out."""

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.identity import tokens
from tests.factories import (
    PASSWORD,
    TEST_KEY,
    another_instance,
    audit_events,
    make_user,
    random_address,
)
from tests.web.conftest import csrf_in

WRONG = "definitely-not-it-99"
DEVICE = "ctcp_device"
OTHER_KEY = b"another-secret-key-" + b"y" * 32


@asynccontextmanager
async def _browser(
    app: FastAPI, address: str, device: str | None = None, scheme: str = "http"
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh browser at `address`, holding a device cookie if given."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    cookies = {DEVICE: device} if device else {}
    async with httpx.AsyncClient(
        transport=transport, base_url=f"{scheme}://ctcp.test", cookies=cookies
    ) as http:
        yield http


async def _attempt(
    app: FastAPI, address: str, email: str, password: str, device: str | None = None
) -> httpx.Response:
    """One sign-in through the API from a fresh browser at `address`."""
    async with _browser(app, address, device) as http:
        return await http.post("/api/v1/session", json={"email": email, "password": password})


async def _portal_attempt(
    app: FastAPI, address: str, email: str, device: str | None = None
) -> httpx.Response:
    """One sign-in through the portal's form from a fresh browser at `address`."""
    async with _browser(app, address, device) as http:
        page = await http.get("/portal/sign-in")
        form = {"csrf_token": csrf_in(page.text), "email": email, "password": PASSWORD}
        return await http.post("/portal/sign-in", data=form | {"otp": "", "next": "/portal"})


async def _device_cookie(app: FastAPI, email: str) -> str:
    """The device cookie a successful sign-in leaves in the browser."""
    response = await _attempt(app, random_address(), email, PASSWORD)
    assert response.status_code == 200, response.text
    return response.cookies[DEVICE]


async def _start_account_delay(app: FastAPI, email: str) -> None:
    """Twenty wrong passwords from five addresses: the account-wide delay, no address lock."""
    for _ in range(5):
        address = random_address()
        for _ in range(4):
            assert (await _attempt(app, address, email, WRONG)).status_code == 401


def _details(events: list[Any], action: str, outcome: str) -> list[dict[str, Any]]:
    return [
        json.loads(event.details)
        for event in events
        if event.action == action and event.outcome == outcome
    ]


async def test_every_sign_in_sets_a_hardened_long_lived_device_cookie(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    for scheme in ("http", "https"):
        async with _browser(app, random_address(), scheme=scheme) as http:
            response = await http.post(
                "/api/v1/session", json={"email": user.email, "password": PASSWORD}
            )
        assert response.status_code == 200
        (cookie,) = [
            value.lower()
            for value in response.headers.get_list("set-cookie")
            if value.startswith(f"{DEVICE}=")
        ]
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert f"max-age={180 * 24 * 3600}" in cookie
        assert ("secure" in cookie.split("; ")) == (scheme == "https")


async def test_the_owners_device_cookie_passes_the_account_wide_delay(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))  # no second factor
    cookie = await _device_cookie(app, user.email)
    await _start_account_delay(app, user.email)
    new_address = random_address()
    assert (await _attempt(app, new_address, user.email, PASSWORD)).status_code == 429
    admitted = await _attempt(app, new_address, user.email, PASSWORD, device=cookie)
    assert admitted.status_code == 200, admitted.text
    # Each sign-in gives the browser a new cookie, which works as well.
    renewed = admitted.cookies[DEVICE]
    assert renewed != cookie
    assert (await _attempt(app, random_address(), user.email, PASSWORD, renewed)).status_code == 200
    # The delay still holds for everyone without the cookie.
    assert (await _attempt(app, random_address(), user.email, PASSWORD)).status_code == 429
    events = await audit_events(database, object_id=str(user.id))
    allowed = _details(events, "session.create", "allowed")
    assert [event.get("device") for event in allowed] == [None, True, True]
    assert allowed[1]["bypassed"] == ["account"]
    refused = _details(events, "session.create", "denied")[-1]
    assert (refused["throttle"], "device" in refused) == ("account", False)


async def test_forged_foreign_stale_and_otherwise_signed_device_cookies_are_ignored(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    other = await make_user(database, roles=("state_focal_point",))
    cookie = await _device_cookie(app, user.email)
    others_cookie = await _device_cookie(app, other.email)
    await _start_account_delay(app, user.email)
    nonce, issued, mac = cookie.split(".")
    now = clock.now()
    ignored = {
        "forged signature": f"{nonce}.{issued}.{'A' * len(mac)}",
        "changed date": f"{nonce}.{int(issued) + 1}.{mac}",
        "another account's": others_cookie,
        "another secret's": tokens.device_cookie_for(
            user.email, b"another-key-" + b"y" * 32, now=now
        ),
        "too old": tokens.device_cookie_for(user.email, TEST_KEY, now=now - timedelta(days=181)),
        "garbage": "not a device cookie",
    }
    for name, value in ignored.items():
        response = await _attempt(app, random_address(), user.email, PASSWORD, device=value)
        assert response.status_code == 429, name
        assert int(response.headers["Retry-After"]) > 0
    assert (
        await _attempt(app, random_address(), user.email, PASSWORD, device=cookie)
    ).status_code == 200
    events = await audit_events(database, object_id=str(user.id))
    refused = _details(events, "session.create", "denied")[-len(ignored) :]
    assert {(event["throttle"], "device" in event) for event in refused} == {("account", False)}


async def test_failures_with_a_device_cookie_lock_that_device_only_and_are_audited(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    home = random_address()
    cookie = await _device_cookie(app, user.email)
    statuses = [
        (await _attempt(app, home, user.email, WRONG, device=cookie)).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    locked = await _attempt(app, home, user.email, PASSWORD, device=cookie)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # The device's failures are its own: at the same address without it, the owner signs in.
    assert (await _attempt(app, home, user.email, PASSWORD)).status_code == 200
    events = await audit_events(database, object_id=str(user.id))
    locks = _details(events, "session.lock", "denied")
    assert [(lock["throttle"], lock["address"]) for lock in locks] == [("device", home)]
    denied = _details(events, "session.create", "denied")
    assert [event["reason"] for event in denied] == ["bad_password"] * 5 + ["locked"] * 2
    assert all(event["device"] is True for event in denied)
    assert {event["throttle"] for event in denied[5:]} == {"device"}


async def test_an_attacker_at_the_owners_address_cannot_lock_out_the_owners_device(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    shared = random_address()  # an office behind one NAT address, say
    async with another_instance(app, login_address_max_failures=8) as instance:
        cookie = await _device_cookie(instance, user.email)
        for _ in range(5):
            assert (await _attempt(instance, shared, user.email, WRONG)).status_code == 401
        for n in range(3):
            stranger = f"sprayed-{n}-{secrets.token_hex(4)}@ctcp.example"
            assert (await _attempt(instance, shared, stranger, WRONG)).status_code == 401
        # The account is locked at this address, and the address too, for cookie-less attempts.
        assert (await _attempt(instance, shared, user.email, PASSWORD)).status_code == 429
        assert (await _attempt(instance, shared, "x@ctcp.example", WRONG)).status_code == 429
        admitted = await _attempt(instance, shared, user.email, PASSWORD, device=cookie)
        assert admitted.status_code == 200, admitted.text
    events = await audit_events(database, object_id=str(user.id))
    allowed = _details(events, "session.create", "allowed")[-1]
    assert (allowed["device"], allowed["bypassed"]) == (True, ["account_address", "address"])


async def test_the_portal_sign_in_sets_and_honours_the_device_cookie(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    signed = await _portal_attempt(app, random_address(), user.email)
    assert signed.status_code == 303, signed.text
    (set_cookie,) = [
        value for value in signed.headers.get_list("set-cookie") if value.startswith(f"{DEVICE}=")
    ]
    assert "HttpOnly" in set_cookie and "Path=/" in set_cookie
    cookie = signed.cookies[DEVICE]
    await _start_account_delay(app, user.email)
    assert (await _portal_attempt(app, random_address(), user.email)).status_code == 429
    admitted = await _portal_attempt(app, random_address(), user.email, device=cookie)
    assert admitted.status_code == 303 and admitted.headers["location"] == "/portal"
    events = await audit_events(database, object_id=str(user.id), action="session.create")
    assert _details(events, "session.create", "allowed")[-1]["device"] is True
