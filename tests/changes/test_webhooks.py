"""Signed webhooks of the change feed: registration and its SSRF refusals, deliveries queued
with the change, signed per Standard Webhooks, retried after an outage, visible to the
administrator, and never telling a client of what its organization may not read."""

import asyncio
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, delete, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ctcp.app import create_app
from ctcp.authz.policy import read_policy_file
from ctcp.changes import webhooks
from ctcp.changes.kinds import KINDS
from ctcp.changes.models import ChangeEntry, WebhookDelivery, WebhookEndpoint
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import on_before_commit
from tests.assistance.conftest import Assist, assist
from tests.factories import ApiClientCredentials, audit_events, make_api_client
from tests.planning.conftest import create_activity

__all__ = ["assist"]

READ_SCOPES = (
    "publications:read",
    "needs:read",
    "requests:read",
    "contacts:read",
    "activities:read",
)
PUBLIC = "93.184.216.34"
# What the test resolver answers, name by name (the system resolver is never asked).
DNS: dict[str, list[str]] = {
    "hooks.webhooks.test": [PUBLIC],
    "private.webhooks.test": ["10.1.2.3"],
    "loopback.webhooks.test": ["127.0.0.1"],
    "metadata.webhooks.test": ["169.254.169.254"],
    "ula.webhooks.test": ["fd00::1"],
    "mapped.webhooks.test": ["::ffff:10.0.0.1"],
    "mixed.webhooks.test": [PUBLIC, "192.168.1.10"],
    "internal.webhooks.test": ["10.20.0.5"],
    "cidr.webhooks.test": ["10.99.1.1"],
    "receiver.webhooks.test": ["127.0.0.1"],
}
# A development receiver is allowed by its name: 127.0.0.1 itself stays refused.
ALLOWED = ["internal.webhooks.test", "10.99.0.0/16", "receiver.webhooks.test"]
HOOK = "https://hooks.webhooks.test/ctcp"


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """This module's app: the test receivers allowed, and no background sender (the tests
    run each delivery pass themselves)."""
    application = create_app(
        settings.model_copy(update={"webhook_poll_seconds": 0, "webhook_allowed_hosts": ALLOWED})
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
def _resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    names = {name: list(addresses) for name, addresses in DNS.items()}

    async def resolve(host: str, _port: int) -> list[webhooks.IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if host not in names:
            raise OSError(f"unknown host {host}")
        return [ipaddress.ip_address(address) for address in names[host]]

    monkeypatch.setattr(webhooks, "resolve_host", resolve)
    yield names


@dataclass
class Receiver:
    """A receiver behind a replaceable transport: answers in turn, then 200."""

    answers: list[int | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text="ok")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


@dataclass
class Hooks:
    world: Assist
    settings: Settings
    created: list[str] = field(default_factory=list)

    async def client(self, scopes: tuple[str, ...] = READ_SCOPES) -> ApiClientCredentials:
        return await make_api_client(self.world.database, org=self.world.entity, scopes=scopes)

    async def register(
        self, client: ApiClientCredentials, url: str = HOOK, types: list[str] | None = None
    ) -> httpx.Response:
        response = await self.world["admin"].post(
            f"/api/v1/api-clients/{client.id}/webhooks",
            json={"url": url, "types": types or sorted(KINDS)},
        )
        if response.status_code == 201:
            self.created.append(response.json()["id"])
        return response

    async def endpoint(self, types: list[str] | None = None) -> dict[str, Any]:
        registered = await self.register(await self.client(), types=types)
        assert registered.status_code == 201, registered.text
        body: dict[str, Any] = registered.json()
        return body

    async def deliveries(self, endpoint_id: str) -> list[WebhookDelivery]:
        async with self.world.database.sessionmaker() as session:
            statement = (
                select(WebhookDelivery)
                .where(col(WebhookDelivery.endpoint_id) == uuid.UUID(endpoint_id))
                .order_by(col(WebhookDelivery.created_at), col(WebhookDelivery.message_id))
            )
            return list((await session.exec(statement)).all())

    async def deliver(self, receiver: Receiver, **changes: Any) -> webhooks.DeliveryReport:
        return await webhooks.deliver_due(
            self.world.database,
            self.settings.model_copy(update=changes),
            transport=receiver.transport,
        )


@pytest.fixture
async def hooks(assist: Assist, app: FastAPI) -> AsyncIterator[Hooks]:
    registry = Hooks(assist, app.state.settings)
    yield registry
    # Later tests' passes must not find this test's endpoints.
    async with assist.database.transaction() as session:
        ids = [uuid.UUID(each) for each in registry.created]
        await session.exec(delete(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(ids)))


def entries(delivery: WebhookDelivery) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = delivery.payload["data"]["entries"]
    return found


def verify(secret: str, request: httpx.Request) -> Any:
    """The receiver's check, by the Standard Webhooks library (the clock must be real)."""
    return Webhook(secret).verify(request.content, dict(request.headers))


def signature_matches(secret: str, request: httpx.Request) -> bool:
    """The same check at the request's own timestamp (for requests sent at a moved clock)."""
    at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], at, request.content)
    return expected in request.headers["webhook-signature"].split(" ")


async def withdraw_needs(world: Assist) -> None:
    withdrawn = await world["officer"].post(
        f"/api/v1/states/{world.state.code}/needs-consent/withdraw",
        json={"reason": "Consultations paused."},
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text


# --- Signatures ---------------------------------------------------------------------------


def test_signature_is_the_standard_webhooks_test_vector() -> None:
    """The specification's published vector."""
    headers = webhooks.signed_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        b'{"test": 2432232314}',
    )
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_each_kind_is_opened_by_the_scope_the_policy_names() -> None:
    """KIND_SCOPES says what policies/policy.csv says: the scope that reads each kind."""
    lines = {(role, resource, action) for _, role, _, resource, action, _ in read_policy_file()}
    assert set(webhooks.KIND_SCOPES) == set(KINDS)
    for name, scope in webhooks.KIND_SCOPES.items():
        assert (f"scope:{scope}", KINDS[name].resource, "read") in lines


# --- Registration -------------------------------------------------------------------------


async def test_refused_urls_are_422_and_audited(hooks: Hooks) -> None:
    client = await hooks.client()
    refused = {
        "http://hooks.webhooks.test/ctcp": "https",
        "https://private.webhooks.test/ctcp": "private",
        "https://loopback.webhooks.test/ctcp": "loopback",
        "https://127.0.0.1/ctcp": "loopback",
        "https://[::1]/ctcp": "loopback",
        "https://metadata.webhooks.test/latest": "link-local",
        "https://ula.webhooks.test/ctcp": "private",
        "https://mapped.webhooks.test/ctcp": "private",
        "https://[::ffff:127.0.0.1]/ctcp": "loopback",
        "https://0.0.0.0/ctcp": "unspecified",
        "https://mixed.webhooks.test/ctcp": "private",
        "https://unknown.webhooks.test/ctcp": "does not resolve",
        "https://user:password@hooks.webhooks.test/ctcp": "Credentials",
        "ftp://hooks.webhooks.test/ctcp": "https",
    }
    for url, reason in refused.items():
        response = await hooks.register(client, url)
        assert response.status_code == 422, (url, response.text)
        assert reason in response.text, (url, response.text)
    denied = await audit_events(hooks.world.database, action="webhook.create", outcome="denied")
    audited = {json.loads(event.details)["url"] for event in denied}
    assert set(refused) <= audited
    async with hooks.world.database.sessionmaker() as session:
        mine = select(WebhookEndpoint).where(col(WebhookEndpoint.api_client_id) == client.id)
        assert (await session.exec(mine)).all() == []


async def test_allow_list_admits_hosts_and_networks(hooks: Hooks) -> None:
    client = await hooks.client()
    for url in (
        "https://internal.webhooks.test/ctcp",
        "https://cidr.webhooks.test/ctcp",
        # Outside production, plain http to a listed host (a development receiver).
        "http://internal.webhooks.test:8080/ctcp",
    ):
        response = await hooks.register(client, url)
        assert response.status_code == 201, (url, response.text)
    production = hooks.settings.model_copy(update={"environment": "production"})
    with pytest.raises(webhooks.RefusedTargetError, match="https"):
        await webhooks.check_target("http://internal.webhooks.test/ctcp", production)
    assert (await webhooks.check_target("https://internal.webhooks.test/x", production)).host


async def test_types_must_be_known_and_granted_by_the_clients_scopes(hooks: Hooks) -> None:
    narrow = await hooks.client(scopes=("needs:read",))
    unknown = await hooks.register(narrow, types=["need", "report"])
    assert unknown.status_code == 422 and "report" in unknown.text
    ungranted = await hooks.register(narrow, types=["need", "publication"])
    assert ungranted.status_code == 422 and "publication" in ungranted.text
    assert (await hooks.register(narrow, types=["need"])).status_code == 201


async def test_only_administrators_manage_webhooks_and_unknown_client_is_404(
    hooks: Hooks,
) -> None:
    client = await hooks.client()
    for who in ("entity", "analyst", "auditor", "state"):
        response = await hooks.world[who].post(
            f"/api/v1/api-clients/{client.id}/webhooks", json={"url": HOOK, "types": ["need"]}
        )
        assert response.status_code == 403, (who, response.text)
        assert (await hooks.world[who].get("/api/v1/webhooks")).status_code == 403
    assert (await hooks.world["anonymous"].get("/api/v1/webhooks")).status_code == 401
    missing = await hooks.world["admin"].post(
        f"/api/v1/api-clients/{uuid.uuid4()}/webhooks", json={"url": HOOK, "types": ["need"]}
    )
    assert missing.status_code == 404
    assert (await hooks.world["admin"].get(f"/api/v1/webhooks/{uuid.uuid4()}")).status_code == 404


async def test_secret_is_shown_once_and_rotation_retires_the_old_one(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    admin = hooks.world["admin"]
    detail = await admin.get(f"/api/v1/webhooks/{endpoint['id']}")
    listed = await admin.get(
        "/api/v1/webhooks", params={"api_client_id": endpoint["api_client_id"]}
    )
    assert detail.status_code == 200 and listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [endpoint["id"]]
    for response in (detail, listed):
        assert secret not in response.text and 'secret"' not in response.text
    async with hooks.world.database.sessionmaker() as session:
        stored = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
        assert stored is not None and secret not in stored.secret_encrypted

    # A delivery signed with the first secret...
    receiver = Receiver()
    await hooks.world.need()
    await hooks.world.share_needs()
    await hooks.deliver(receiver)
    first = receiver.requests[-1]
    assert verify(secret, first)["data"]["client_id"] == endpoint["client_id"]

    rotated = await admin.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != secret and new_secret.startswith("whsec_")
    # ...and the next one with the new secret only.
    await withdraw_needs(hooks.world)
    await hooks.deliver(receiver)
    second = receiver.requests[-1]
    assert second is not first
    assert verify(new_secret, second)["data"]["entries"]
    with pytest.raises(WebhookVerificationError):
        verify(secret, second)

    actions = [
        (event.action, event.outcome)
        for event in await audit_events(hooks.world.database, object_id=endpoint["id"])
    ]
    assert ("webhook.create", "allowed") in actions
    assert ("webhook.rotate_secret", "allowed") in actions
    assert ("webhook.read", "allowed") in actions

    removed = await admin.delete(f"/api/v1/webhooks/{endpoint['id']}")
    assert removed.status_code == 204
    assert (await admin.get(f"/api/v1/webhooks/{endpoint['id']}")).status_code == 404
    assert await hooks.deliveries(endpoint["id"]) == []
    deleted = await audit_events(hooks.world.database, action="webhook.delete")
    assert endpoint["id"] in {event.object_id for event in deleted}


# --- Queued with the change ---------------------------------------------------------------


async def test_withdrawal_queues_its_revoke_in_the_same_transaction(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    need = await hooks.world.need()
    assert await hooks.deliveries(endpoint["id"]) == []  # not shared yet: nothing to tell
    await hooks.world.share_needs()
    [shared] = await hooks.deliveries(endpoint["id"])
    await withdraw_needs(hooks.world)
    queued = await hooks.deliveries(endpoint["id"])
    assert len(queued) == 2
    ops = [[(e["id"], e["op"]) for e in entries(d) if e["id"] == need["id"]] for d in queued]
    assert ops == [[(need["id"], "upsert")], [(need["id"], "revoke")]]
    # Each item is the feed's entry: its number, kind, id and operation, no content.
    async with hooks.world.database.sessionmaker() as session:
        statement = select(ChangeEntry).where(col(ChangeEntry.object_id) == uuid.UUID(need["id"]))
        recorded = sorted(entry.seq for entry in (await session.exec(statement)).all())
    revoke = next(e for e in entries(queued[1]) if e["id"] == need["id"])
    assert revoke == {"seq": recorded[-1], "type": "need", "id": need["id"], "op": "revoke"}
    assert queued[1].status == "pending" and queued[1].attempts == 0
    assert shared.payload["type"] == "ctcp.changes"


async def test_rolled_back_change_queues_nothing(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    need = await hooks.world.need()
    await hooks.world.share_needs()
    before = len(await hooks.deliveries(endpoint["id"]))

    async def fail_after_the_recorder(_session: Any) -> None:
        raise RuntimeError("the commit fails after the feed recorded its entries")

    with pytest.raises(RuntimeError):
        async with hooks.world.database.transaction() as session:
            feed.touch(session, "need", [uuid.UUID(need["id"])])
            on_before_commit(session, fail_after_the_recorder)
    assert len(await hooks.deliveries(endpoint["id"])) == before
    async with hooks.world.database.transaction() as session:
        feed.touch(session, "need", [uuid.UUID(need["id"])])
    assert len(await hooks.deliveries(endpoint["id"])) == before + 1


async def test_entries_never_tell_of_another_entitys_activity(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["activity"])
    # The State shares no needs: another entity's activity is that entity's alone.
    theirs = await create_activity(hooks.world, who="other_entity")
    ours = await create_activity(hooks.world, who="entity")
    told = [e for d in await hooks.deliveries(endpoint["id"]) for e in entries(d)]
    assert {e["id"] for e in told} == {ours["id"]}
    assert all(e.keys() == {"seq", "type", "id", "op"} for e in told)
    # Once the State shares its needs, every Compact entity may read it: now it is told.
    await hooks.world.share_needs()
    told = [e for d in await hooks.deliveries(endpoint["id"]) for e in entries(d)]
    assert (theirs["id"], "upsert") in {(e["id"], e["op"]) for e in told}


# --- The sender ---------------------------------------------------------------------------


async def test_delivery_is_signed_and_sent_to_the_checked_address(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    receiver = Receiver()
    await hooks.deliver(receiver)
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery.status == "delivered" and delivery.last_status_code == 200
    request = next(r for r in receiver.requests if r.headers["webhook-id"] == delivery.message_id)
    payload = verify(endpoint["secret"], request)
    assert payload == delivery.payload
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    # The connection goes to the address that was checked, under the URL's name.
    assert request.url.host == PUBLIC and request.url.path == "/ctcp"
    assert request.headers["host"] == "hooks.webhooks.test"
    assert request.extensions["sni_hostname"] == "hooks.webhooks.test"


async def test_outage_is_retried_with_back_off_then_delivered(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    receiver = Receiver(answers=[503, httpx.ConnectError("connection refused")])
    base = hooks.settings.webhook_retry_base_seconds

    await hooks.deliver(receiver)
    [row] = await hooks.deliveries(endpoint["id"])
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
    assert row.next_attempt_at - clock.now() > timedelta(seconds=base - 5)
    await hooks.deliver(receiver)  # not due yet: not tried
    assert (await hooks.deliveries(endpoint["id"]))[0].attempts == 1

    clock.advance(timedelta(seconds=base + 1))
    await hooks.deliver(receiver)
    [row] = await hooks.deliveries(endpoint["id"])
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.last_error is not None and "ConnectError" in row.last_error
    # Doubled.
    assert row.next_attempt_at - clock.now() > timedelta(seconds=2 * base - 5)

    clock.advance(timedelta(seconds=2 * base + 1))
    await hooks.deliver(receiver)
    [row] = await hooks.deliveries(endpoint["id"])
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)
    mine = [r for r in receiver.requests if r.headers["webhook-id"] == row.message_id]
    assert len(mine) == 3  # the same message id on every attempt
    assert all(signature_matches(endpoint["secret"], request) for request in mine)


async def test_address_turning_private_is_not_sent_to(
    hooks: Hooks, _resolver: dict[str, list[str]]
) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    _resolver["hooks.webhooks.test"] = ["10.0.0.7"]  # DNS changed since registration
    receiver = Receiver()
    await hooks.deliver(receiver)
    [row] = await hooks.deliveries(endpoint["id"])
    assert row.status == "pending" and row.last_error is not None
    assert "private" in row.last_error
    assert not [r for r in receiver.requests if r.headers["webhook-id"] == row.message_id]


async def test_max_attempts_fail_and_the_administrator_sees_it(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    receiver = Receiver(answers=[500, 500, 500])
    await hooks.deliver(receiver, webhook_max_attempts=2)
    clock.advance(timedelta(hours=1))
    await hooks.deliver(receiver, webhook_max_attempts=2)
    [row] = await hooks.deliveries(endpoint["id"])
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 2, 500)
    clock.advance(timedelta(days=1))
    await hooks.deliver(receiver, webhook_max_attempts=2)
    assert (await hooks.deliveries(endpoint["id"]))[0].attempts == 2  # never again

    clock.reset()  # the administrator's session is of today
    detail = await hooks.world["admin"].get(f"/api/v1/webhooks/{endpoint['id']}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["counts"]["failed"] == 1
    [failure] = body["failures"]
    assert failure["message_id"] == row.message_id
    assert (failure["status"], failure["attempts"], failure["last_status_code"]) == (
        "failed",
        2,
        500,
    )
    assert failure["last_error"] == "HTTP 500" and failure["next_attempt_at"] is None
    assert body["deliveries"][0]["message_id"] == row.message_id


async def test_disabled_client_hears_nothing_more(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    [queued] = await hooks.deliveries(endpoint["id"])
    disabled = await hooks.world["admin"].delete(f"/api/v1/api-clients/{endpoint['api_client_id']}")
    assert disabled.status_code == 204
    receiver = Receiver()
    await hooks.deliver(receiver)
    [row] = await hooks.deliveries(endpoint["id"])
    assert row.status == "failed" and row.last_error is not None
    assert not [r for r in receiver.requests if r.headers["webhook-id"] == queued.message_id]
    await withdraw_needs(hooks.world)
    assert len(await hooks.deliveries(endpoint["id"])) == 1


async def test_a_development_receiver_gets_it_over_a_real_connection(hooks: Hooks) -> None:
    """http to an allowed host outside production, through the real transport: the
    connection goes to the checked address, the URL's name in Host."""
    received: list[tuple[bytes, bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        received.append((head, await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        registered = await hooks.register(
            await hooks.client(), f"http://receiver.webhooks.test:{port}/hooks", ["need"]
        )
        assert registered.status_code == 201, registered.text
        endpoint = registered.json()
        await hooks.world.need()
        await hooks.world.share_needs()
        report = await webhooks.deliver_due(hooks.world.database, hooks.settings)
        assert report.delivered >= 1
    finally:
        server.close()
        await server.wait_closed()
    [row] = await hooks.deliveries(endpoint["id"])
    assert (row.status, row.last_status_code) == ("delivered", 204)
    [(head, body)] = received
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hooks HTTP/1.1"
    pairs = (line.split(": ", 1) for line in lines[1:] if line)
    headers = {name.lower(): value for name, value in pairs}
    assert headers["host"] == f"receiver.webhooks.test:{port}"
    request = httpx.Request("POST", "http://x/", headers=headers, content=body)
    assert verify(endpoint["secret"], request) == row.payload
