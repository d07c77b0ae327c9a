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
from sqlmodel import col, delete, select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ctcp.app import create_app
from ctcp.audit.service import AuditContext
from ctcp.authz.policy import read_policy_file, sync_policy
from ctcp.changes import webhooks
from ctcp.changes.kinds import KINDS
from ctcp.changes.models import ChangeEntry, WebhookDelivery, WebhookEndpoint
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import on_before_commit
from ctcp.oauth.models import ApiClient
from ctcp.organizations.models import Organization
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

    def ids(self) -> list[uuid.UUID]:
        """This test's endpoints: a pass sends theirs only (the shared database holds
        other tests' endpoints and deliveries)."""
        return [uuid.UUID(created) for created in self.created]

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
            endpoints=self.ids(),
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


# --- Registration -------------------------------------------------------------------------


async def test_refused_urls_are_422_and_audited(hooks: Hooks) -> None:
    """The answer never names the address a host resolves to, nor its class (a scanner of
    the internal network otherwise); the audit trail keeps both."""
    client = await hooks.client()
    address = "does not resolve to an address that may receive webhooks"
    refused = {
        "http://hooks.webhooks.test/ctcp": ("https", None),
        "https://private.webhooks.test/ctcp": (address, "10.1.2.3, a private"),
        "https://loopback.webhooks.test/ctcp": (address, "127.0.0.1, a loopback"),
        "https://127.0.0.1/ctcp": (address, "loopback"),
        "https://[::1]/ctcp": (address, "loopback"),
        "https://metadata.webhooks.test/latest": (address, "169.254.169.254, a link-local"),
        "https://ula.webhooks.test/ctcp": (address, "private"),
        "https://mapped.webhooks.test/ctcp": (address, "private"),
        "https://[::ffff:127.0.0.1]/ctcp": (address, "loopback"),
        "https://0.0.0.0/ctcp": (address, "unspecified"),
        "https://mixed.webhooks.test/ctcp": (address, "192.168.1.10, a private"),
        "https://[fec0::1]/ctcp": (address, "site-local"),
        "https://192.0.0.9/ctcp": (address, "protocol-assignment"),
        "https://unknown.webhooks.test/ctcp": ("does not resolve", "unknown host"),
        "https://user:password@hooks.webhooks.test/ctcp": ("Credentials", None),
        "ftp://hooks.webhooks.test/ctcp": ("https", None),
        "https://hooks.webhooks.test:22/ctcp": ("port must be 443", None),
        "https://hooks.webhooks.test:80/ctcp": ("port must be 443", None),
    }
    for url, (reason, _) in refused.items():
        response = await hooks.register(client, url)
        assert response.status_code == 422, (url, response.text)
        assert reason in response.text, (url, response.text)
        for secret in ("10.", "127.0", "169.254", "192.", "private", "loopback", "fec0"):
            assert secret not in response.json()["detail"], (url, response.text)
    denied = await audit_events(hooks.world.database, action="webhook.create", outcome="denied")
    audited = {json.loads(event.details)["url"]: json.loads(event.details) for event in denied}
    assert set(refused) <= set(audited)
    for url, (_, detail) in refused.items():
        if detail is not None:
            assert detail in audited[url]["detail"], (url, audited[url])
    async with hooks.world.database.sessionmaker() as session:
        mine = select(WebhookEndpoint).where(col(WebhookEndpoint.api_client_id) == client.id)
        assert (await session.exec(mine)).all() == []
    # The receiver's usual ports pass.
    for port in (443, 8443, 65535):
        target = await webhooks.check_target(f"https://hooks.webhooks.test:{port}/", hooks.settings)
        assert target.address == ipaddress.ip_address(PUBLIC)


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("fec0::1", "site-local"),
        ("192.0.0.9", "protocol-assignment"),
        ("192.0.0.170", "protocol-assignment"),
        ("192.31.196.1", "special-purpose"),
        ("192.52.193.1", "special-purpose"),
        ("192.175.48.1", "special-purpose"),
        ("198.18.0.1", "benchmarking"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("100::1", "discard-only"),
        ("2001:2::1", "protocol-assignment"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("5f00::1", "segment-routing"),
        ("64:ff9b:1::1", "special-purpose"),
        ("64:ff9b::10.0.0.1", "private"),
        ("::10.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("2002:0a00:0001::1", "private"),
        ("ff02::1", "multicast"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        # NAT64 reaches the public IPv4 address it carries: an IPv6-only network's way out.
        ("64:ff9b::8.8.8.8", None),
    ],
)
def test_special_purpose_addresses_are_refused(address: str, refused: str | None) -> None:
    assert webhooks.address_refusal(ipaddress.ip_address(address)) == refused


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
    # The administrator is told it was refused, not where the name points now.
    assert "may receive webhooks" in row.last_error and "10.0.0.7" not in row.last_error
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
        report = await webhooks.deliver_due(
            hooks.world.database, hooks.settings, endpoints=hooks.ids()
        )
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


# --- What stands at each attempt ----------------------------------------------------------


async def _set(world: Assist, model: Any, key: uuid.UUID, **values: Any) -> None:
    async with world.database.transaction() as session:
        await session.exec(update(model).where(col(model.id) == key).values(**values))


async def _two_queued(hooks: Hooks) -> tuple[dict[str, Any], list[WebhookDelivery]]:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    await withdraw_needs(hooks.world)
    queued = await hooks.deliveries(endpoint["id"])
    assert len(queued) == 2
    return endpoint, queued


def _on_first_resolution(action: Any) -> webhooks.Resolver:
    """A resolver that runs `action` while the pass's first attempt is under way."""
    calls: list[str] = []

    async def resolve(host: str, _port: int) -> list[webhooks.IPAddress]:
        if not calls:
            await action()
        calls.append(host)
        return [ipaddress.ip_address(PUBLIC)]

    return resolve


async def test_a_client_disabled_during_a_pass_is_sent_nothing_more(hooks: Hooks) -> None:
    endpoint, queued = await _two_queued(hooks)
    client_id = uuid.UUID(endpoint["api_client_id"])

    async def disable() -> None:
        await _set(hooks.world, ApiClient, client_id, active=False)

    receiver = Receiver()
    await webhooks.deliver_due(
        hooks.world.database,
        hooks.settings,
        transport=receiver.transport,
        resolve=_on_first_resolution(disable),
        endpoints=hooks.ids(),
    )
    sent = {r.headers["webhook-id"] for r in receiver.requests}
    # The first attempt was already under way; the second is not made.
    assert sent & {d.message_id for d in queued} == {queued[0].message_id}
    rows = await hooks.deliveries(endpoint["id"])
    assert [r.status for r in rows] == ["delivered", "failed"]
    assert rows[1].last_error == "not sent: the API client is disabled"
    assert rows[1].attempts == 1


async def test_a_secret_rotated_during_a_pass_signs_the_next_attempt(hooks: Hooks) -> None:
    endpoint, queued = await _two_queued(hooks)
    rotated: list[str] = []

    async def rotate() -> None:
        answer = await hooks.world["admin"].post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret")
        assert answer.status_code == 200, answer.text
        rotated.append(answer.json()["secret"])

    receiver = Receiver()
    await webhooks.deliver_due(
        hooks.world.database,
        hooks.settings,
        transport=receiver.transport,
        resolve=_on_first_resolution(rotate),
        endpoints=hooks.ids(),
    )
    by_id = {r.headers["webhook-id"]: r for r in receiver.requests}
    second = by_id[queued[1].message_id]
    assert verify(rotated[0], second) == queued[1].payload
    with pytest.raises(WebhookVerificationError):
        verify(endpoint["secret"], second)


async def test_an_inactive_organization_or_deleted_endpoint_is_sent_nothing(
    hooks: Hooks,
) -> None:
    endpoint, queued = await _two_queued(hooks)
    await _set(hooks.world, Organization, hooks.world.entity.id, active=False)
    try:
        receiver = Receiver()
        await hooks.deliver(receiver)
        # Nor can a new endpoint be registered for it.
        refused = await hooks.register(await hooks.client())
        assert refused.status_code == 409 and "inactive" in refused.text
    finally:
        await _set(hooks.world, Organization, hooks.world.entity.id, active=True)
    rows = await hooks.deliveries(endpoint["id"])
    assert {r.status for r in rows} == {"failed"}
    assert {r.last_error for r in rows} == {"not sent: the API client's organization is inactive"}
    assert not {r.headers["webhook-id"] for r in receiver.requests} & {d.message_id for d in queued}


async def test_an_endpoint_deleted_during_a_pass_is_sent_nothing_more(hooks: Hooks) -> None:
    endpoint, queued = await _two_queued(hooks)

    async def delete_it() -> None:
        answer = await hooks.world["admin"].delete(f"/api/v1/webhooks/{endpoint['id']}")
        assert answer.status_code == 204

    receiver = Receiver()
    await webhooks.deliver_due(
        hooks.world.database,
        hooks.settings,
        transport=receiver.transport,
        resolve=_on_first_resolution(delete_it),
        endpoints=hooks.ids(),
    )
    sent = {r.headers["webhook-id"] for r in receiver.requests}
    # The attempt under way when it was deleted went; the next did not.
    assert sent & {d.message_id for d in queued} == {queued[0].message_id}
    assert await hooks.deliveries(endpoint["id"]) == []


# --- The stored policy decides the kinds --------------------------------------------------


async def _policy(world: Assist, lines: list[tuple[str, ...]]) -> None:
    async with world.database.transaction() as session:
        await sync_policy(session, lines, context=AuditContext())


async def test_kinds_follow_the_stored_policy_when_queueing_and_when_sending(
    hooks: Hooks,
) -> None:
    """An operator takes `needs:read` away from clients in the stored policy: what was
    queued is sent without its needs (nothing at all if only needs), nothing more is
    queued of them, and the kind can no longer be registered."""
    both = await hooks.endpoint(types=["activity", "need"])
    needs_only = await hooks.endpoint(types=["need"])
    await create_activity(hooks.world, who="entity")
    await hooks.world.need()
    await hooks.world.share_needs()  # one unit: the State's needs and activities
    [mixed] = [
        d
        for d in await hooks.deliveries(both["id"])
        if {e["type"] for e in entries(d)} == {"activity", "need"}
    ]
    [only] = await hooks.deliveries(needs_only["id"])
    lines = read_policy_file()
    without = [line for line in lines if line[1:5] != ("scope:needs:read", "*", "need", "read")]
    assert len(without) == len(lines) - 1
    await _policy(hooks.world, without)
    try:
        receiver = Receiver()
        await hooks.deliver(receiver)
        by_id = {r.headers["webhook-id"]: r for r in receiver.requests}
        # Sending: the needs are dropped from what goes out; a delivery of needs only is
        # not sent at all.
        sent = verify(both["secret"], by_id[mixed.message_id])
        assert {e["type"] for e in sent["data"]["entries"]} == {"activity"}
        stored = next(d for d in await hooks.deliveries(both["id"]) if d.id == mixed.id)
        assert stored.status == "delivered" and stored.payload == sent
        assert only.message_id not in by_id
        [refused] = await hooks.deliveries(needs_only["id"])
        assert refused.status == "failed"
        assert refused.last_error == (
            "not sent: the client may no longer read any of its entries' kinds"
        )
        # Queueing: a change of needs queues nothing more of them for either endpoint.
        before = len(await hooks.deliveries(both["id"]))
        await withdraw_needs(hooks.world)
        later = (await hooks.deliveries(both["id"]))[before:]
        assert {e["type"] for d in later for e in entries(d)} <= {"activity"}
        assert len(await hooks.deliveries(needs_only["id"])) == 1
        # Registration: the kind is refused.
        again = await hooks.register(await hooks.client(), types=["need"])
        assert again.status_code == 422 and "need" in again.text
    finally:
        await _policy(hooks.world, lines)
    # The outcomes are audited, the recipient named.
    delivered = await audit_events(hooks.world.database, action="webhook.deliver")
    mine = {event.object_id: event for event in delivered}
    assert mine[needs_only["id"]].outcome == "error"
    assert json.loads(mine[needs_only["id"]].details)["message_id"] == only.message_id
    allowed = [e for e in delivered if e.object_id == both["id"] and e.outcome == "allowed"]
    details = [json.loads(e.details) for e in allowed]
    assert {
        "message_id": mixed.message_id,
        "entries": len(sent["data"]["entries"]),
    }.items() <= next(d for d in details if d["message_id"] == mixed.message_id).items()
    assert allowed[0].actor_client_id == both["client_id"]


async def test_a_kind_the_organization_may_not_read_is_not_registered(hooks: Hooks) -> None:
    """The scope alone is not enough: the organization's own grant must allow the kind."""
    lines = read_policy_file()
    without = [
        line for line in lines if line[1:5] != ("entity_focal_point", "*", "activity", "read")
    ]
    assert len(without) < len(lines)
    await _policy(hooks.world, without)
    try:
        refused = await hooks.register(await hooks.client(), types=["activity"])
        assert refused.status_code == 422 and "activity" in refused.text
    finally:
        await _policy(hooks.world, lines)
    assert (await hooks.register(await hooks.client(), types=["activity"])).status_code == 201


# --- Bounded, concurrent, audited, purged -------------------------------------------------


async def test_a_large_unit_is_split_into_bounded_deliveries_sent_in_feed_order(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "MAX_ENTRIES_PER_DELIVERY", 2)
    endpoint = await hooks.endpoint(types=["need"])
    for _ in range(5):
        await hooks.world.need()
    await hooks.world.share_needs()
    queued = await hooks.deliveries(endpoint["id"])
    sizes = [len(entries(d)) for d in queued]
    assert sum(sizes) >= 5 and max(sizes) == 2 and len(queued) == -(-sum(sizes) // 2)
    receiver = Receiver()
    await hooks.deliver(receiver)
    mine = {d.message_id for d in queued}
    bodies = [
        verify(endpoint["secret"], r) for r in receiver.requests if r.headers["webhook-id"] in mine
    ]
    seqs = [e["seq"] for body in bodies for e in body["data"]["entries"]]
    assert len(bodies) == len(queued) and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_a_failing_receiver_holds_back_only_its_own_later_deliveries(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "MAX_ENTRIES_PER_DELIVERY", 1)
    endpoint = await hooks.endpoint(types=["need"])
    for _ in range(3):
        await hooks.world.need()
    await hooks.world.share_needs()
    queued = await hooks.deliveries(endpoint["id"])
    assert len(queued) >= 3
    receiver = Receiver(answers=[503])
    await hooks.deliver(receiver)
    rows = {d.message_id: d for d in await hooks.deliveries(endpoint["id"])}
    tried = [r.headers["webhook-id"] for r in receiver.requests if r.headers["webhook-id"] in rows]
    assert len(tried) == 1  # the first failed: the rest were not tried in this pass
    assert [rows[m].attempts for m in rows].count(1) == 1
    assert {rows[m].status for m in rows} == {"pending"}


async def test_a_slow_receiver_does_not_hold_up_another(
    hooks: Hooks, _resolver: dict[str, list[str]]
) -> None:
    """Two endpoints are sent to at the same time: each receiver answers only once the
    other's request has arrived (sent one after the other, the first would time out)."""
    _resolver["slow.webhooks.test"] = [PUBLIC]
    slow = await hooks.register(await hooks.client(), "https://slow.webhooks.test/x", ["need"])
    fast = await hooks.register(await hooks.client(), HOOK, ["need"])
    assert slow.status_code == fast.status_code == 201
    await hooks.world.need()
    await hooks.world.share_needs()
    arrived: set[str] = set()
    both = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        arrived.add(request.headers["host"])
        if {"slow.webhooks.test", "hooks.webhooks.test"} <= arrived:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return httpx.Response(200)

    await webhooks.deliver_due(
        hooks.world.database,
        hooks.settings,
        transport=httpx.MockTransport(handle),
        endpoints=hooks.ids(),
    )
    for registered in (slow, fast):
        [row] = await hooks.deliveries(registered.json()["id"])
        assert row.status == "delivered", row.last_error


async def test_final_outcomes_are_audited_and_old_ones_purged(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(types=["need"])
    await hooks.world.need()
    await hooks.world.share_needs()
    [row] = await hooks.deliveries(endpoint["id"])
    await hooks.deliver(Receiver())
    [event] = [
        e
        for e in await audit_events(hooks.world.database, action="webhook.deliver")
        if e.object_id == endpoint["id"]
    ]
    assert event.outcome == "allowed" and event.object_type == "webhook"
    details = json.loads(event.details)
    assert details["message_id"] == row.message_id and details["entries"] == len(entries(row))
    assert set(details["ids"]) == {e["id"] for e in entries(row)}

    await withdraw_needs(hooks.world)  # a second delivery, left pending
    retention = timedelta(days=hooks.settings.change_feed_retention_days)
    async with hooks.world.database.transaction() as session:
        assert await webhooks.purge_deliveries(session, clock.now() - retention) >= 0
    assert len(await hooks.deliveries(endpoint["id"])) == 2  # younger than retention
    async with hooks.world.database.transaction() as session:
        await webhooks.purge_deliveries(session, clock.now() + timedelta(seconds=1))
    [left] = await hooks.deliveries(endpoint["id"])
    assert left.status == "pending"  # only delivered and failed rows go
