"""Portal page tests: people signed in through a browser-like client, forms with CSRF."""

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ctcp.core.db import Database
from ctcp.identity.models import User
from ctcp.organizations.models import Organization
from tests.factories import make_user, new_client, sign_in

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_in(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = CSRF_FIELD.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@dataclass
class Reader:
    """A signed-in person's browser: the session cookie, no CSRF header."""

    user: User
    client: httpx.AsyncClient
    csrf: str

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(
        self, path: str, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Submit a form as the page would: with the session's CSRF token."""
        return await self.client.post(
            path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs
        )

    async def post_without_csrf(
        self, path: str, data: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.client.post(path, data=data or {})


async def reader(
    app: FastAPI,
    database: Database,
    *,
    roles: tuple[str, ...] = (),
    org: Organization | None = None,
    kind: str = "member_state",
    locale: str | None = None,
) -> Reader:
    """A user of these roles, signed in; pages answer in `locale` when given."""
    user = await make_user(database, org=org, roles=roles, kind=kind)
    client = new_client(app)
    if locale:
        client.cookies.set("ctcp_lang", locale)
    signed = await sign_in(client, user.email)
    del client.headers["X-CSRF-Token"]  # a browser sends the form field, not the header
    return Reader(user, client, signed.csrf)


@pytest.fixture
async def anonymous(app: FastAPI) -> Any:
    client = new_client(app)
    try:
        yield client
    finally:
        await client.aclose()
