"""Schemathesis over every operation of /openapi.json, as three callers.

As a platform administrator, a State focal point and an API client (every scope), each
operation gets generated requests, valid and invalid, against a real server on
loopback. Every answer must be: no 5xx, a status and body the document declares, and no
success once the credentials are taken away (schemathesis' `ignored_auth` probe).
"""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from ctcp.app import create_app
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.factories import PASSWORD, make_api_client, make_org, make_user, next_otp

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]
EXAMPLES = 12
# Operations that end the caller's own session would only fuzz the sign-in page after.
ENDS_SESSION = {("DELETE", "/api/v1/session"), ("POST", "/api/v1/me/password")}
# Operations a client's credentials or a session may call: the `ignored_auth` probe
# spoils the client's credentials, and the caller's session cookie rightly still admits it.
EITHER_CLIENT_OR_SESSION = {("POST", "/oauth/introspect")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server(fresh_database_url: str, settings: Settings) -> Iterator[str]:
    """The app on a loopback port, in a thread with its own event loop, on its own database."""
    app = create_app(settings.model_copy(update={"database_url": fresh_database_url}))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=20)


Identity = tuple[dict[str, str], dict[str, str]]


def _identities(database_url: str, base_url: str) -> dict[str, Identity]:
    """Headers and cookies for each caller: a session cookie and CSRF token, or a token."""

    async def seed() -> tuple[str, str, Any]:
        database = Database(database_url)
        try:
            admin = await make_user(database, roles=("platform_admin",))
            state = await make_user(
                database, org=await make_org(database), roles=("state_focal_point",)
            )
            credentials = await make_api_client(database)
        finally:
            await database.dispose()
        return admin.email, state.email, credentials

    admin, state, credentials = asyncio.run(seed())
    identities: dict[str, Identity] = {}
    with httpx.Client(base_url=base_url) as http:
        for name, email in (("platform_admin", admin), ("state_focal_point", state)):
            body = {"email": email, "password": PASSWORD}
            if name == "platform_admin":
                body["otp"] = next_otp(email)
            signed_in = http.post("/api/v1/session", json=body)
            assert signed_in.status_code == 200, signed_in.text
            identities[name] = (
                {"X-CSRF-Token": signed_in.json()["csrf_token"]},
                dict(signed_in.cookies.items()),
            )
            http.cookies.clear()
        token = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials.client_id, credentials.secret),
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        identities["api_client"] = (bearer, {})
    return identities


@dataclass
class Drawn:
    """The requests drawn for one operation in one mode, or why none could be."""

    operation: Any
    mode: GenerationMode
    cases: list[Any]
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.operation.method.upper()} {self.operation.path}"

    @property
    def ends_session(self) -> bool:
        return (self.operation.method.upper(), self.operation.path) in ENDS_SESSION

    @property
    def either_client_or_session(self) -> bool:
        key = (self.operation.method.upper(), self.operation.path)
        return key in EITHER_CLIENT_OR_SESSION


def _draw(operation: Any, mode: GenerationMode) -> Drawn:
    """What hypothesis generates for `operation`: always the same (`derandomize`), so it
    is drawn once and sent as every caller, on every backend (drawing costs the most)."""
    cases: list[Any] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def draw(case: Any) -> None:
        cases.append(case)

    try:
        draw()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to break: no inputs
    except (Exception, BaseExceptionGroup) as error:
        return Drawn(operation, mode, cases, str(error))
    return Drawn(operation, mode, cases)


@pytest.fixture(scope="session")
def drawn() -> dict[str, list[Drawn]]:
    """The cases drawn for each document served: the backends serve the same one."""
    return {}


def _first_failure(
    drawn: Drawn, server: str, headers: dict[str, str], cookies: dict[str, str]
) -> str | None:
    """Send the drawn requests until one fails as this caller (hypothesis stopped there).

    A person's requests carry their session cookie (and CSRF header), a client's its
    bearer token."""
    if drawn.error is not None:
        return drawn.error
    excluded = [ignored_auth] if cookies and drawn.either_client_or_session else []
    for case in drawn.cases:
        with requests.Session() as session:
            # Keep no cookie a response sets: each request carries exactly the case's.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            try:
                case.call_and_validate(
                    base_url=server,
                    headers=headers,
                    cookies=cookies,
                    checks=CHECKS,
                    excluded_checks=excluded,
                    session=session,
                )
            except (Exception, BaseExceptionGroup) as error:
                return str(error)
    return None


def test_every_operation_survives_fuzzing_as_three_callers(
    server: str, fresh_database_url: str, drawn: dict[str, list[Drawn]]
) -> None:
    document = httpx.get(f"{server}/openapi.json").json()
    key = json.dumps(document, sort_keys=True)
    if key not in drawn:
        schema = schemathesis.openapi.from_dict(document)
        drawn[key] = [
            _draw(result.ok(), mode)
            for result in schema.get_all_operations()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    assert len({generated.label for generated in drawn[key]}) >= 40
    identities = _identities(fresh_database_url, server)
    failures: list[str] = []
    for generated in drawn[key]:
        for caller, (headers, cookies) in identities.items():
            if caller != "api_client" and generated.ends_session:
                continue
            failure = _first_failure(generated, server, headers, cookies)
            if failure is not None:
                failures.append(
                    f"{generated.label} as {caller} ({generated.mode.value}):\n{failure}"
                )
    assert not failures, "\n\n".join(failures[:10]) + f"\n\n{len(failures)} failing in all"
