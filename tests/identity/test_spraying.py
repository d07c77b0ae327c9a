"""Password spraying is throttled per address; an attacker cannot lock an account's owner out."""

import json
import secrets

import httpx
from fastapi import FastAPI

from ctcp.core.db import Database
from tests.factories import (
    PASSWORD,
    another_instance,
    audit_events,
    make_user,
    next_otp,
    random_address,
)

WRONG = "definitely-not-it-99"


async def _attempt(
    app: FastAPI, address: str, email: str, password: str, otp: str | None = None
) -> httpx.Response:
    """One sign-in from a fresh browser at `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    payload = {"email": email, "password": password} | ({"otp": otp} if otp else {})
    async with httpx.AsyncClient(transport=transport, base_url="http://ctcp.test") as http:
        return await http.post("/api/v1/session", json=payload)


def _new_email() -> str:
    return f"sprayed-{secrets.token_hex(4)}@ctcp.example"


async def test_many_accounts_from_one_address_are_throttled_and_audited(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    attacker, elsewhere = random_address(), random_address()
    async with another_instance(app, login_address_max_failures=10) as instance:
        # Unknown e-mails count like wrong passwords, and answer the same.
        emails = [user.email if n % 3 == 0 else _new_email() for n in range(10)]
        failed = [await _attempt(instance, attacker, email, WRONG) for email in emails]
        assert {response.status_code for response in failed} == {401}
        assert len({response.text for response in failed}) == 1
        refused = await _attempt(instance, attacker, _new_email(), WRONG)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["content-type"] == "application/problem+json"
        # The address is refused whatever it tries, an existing account and its password too.
        known = await _attempt(instance, attacker, user.email, PASSWORD)
        assert (known.status_code, known.json()) == (429, refused.json())
        assert (await _attempt(instance, elsewhere, user.email, PASSWORD)).status_code == 200
    events = await audit_events(database, ip=attacker)
    locks = [json.loads(event.details) for event in events if event.action == "session.lock"]
    assert [lock["throttle"] for lock in locks] == ["address"]
    refusals = [
        json.loads(event.details)
        for event in events
        if event.action == "session.create" and '"reason": "locked"' in event.details
    ]
    assert [refusal["throttle"] for refusal in refusals] == ["address", "address"]
    assert all(event.outcome == "denied" for event in events)


async def test_the_owner_is_not_locked_out_by_an_attackers_failures(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    attacker, owner = random_address(), random_address()
    statuses = [(await _attempt(app, attacker, user.email, WRONG)).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert (await _attempt(app, attacker, user.email, PASSWORD)).status_code == 429
    assert (await _attempt(app, owner, user.email, PASSWORD)).status_code == 200
    locks = await audit_events(database, action="session.lock", object_id=str(user.id))
    assert [json.loads(lock.details)["throttle"] for lock in locks] == ["account_address"]
    assert locks[0].ip == attacker


async def test_the_account_wide_delay_lets_only_two_factors_through(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, mfa=True)
    plain = await make_user(database)
    unknown = _new_email()
    for email in (user.email, plain.email, unknown):
        # Four failures from each of five addresses: no address reaches its own lock of five.
        for _ in range(5):
            address = random_address()
            for _ in range(4):
                assert (await _attempt(app, address, email, WRONG)).status_code == 401
    owner = random_address()
    # Without a second factor nothing passes; an unknown e-mail looks exactly the same.
    without = await _attempt(app, owner, plain.email, PASSWORD)
    assert without.status_code == 429 and int(without.headers["Retry-After"]) > 0
    nobody = await _attempt(app, owner, unknown, PASSWORD)
    assert (nobody.status_code, nobody.json()) == (429, without.json())
    code = next_otp(user.email)  # one code: a wrong password never gets to use it up
    wrong_code = "000000" if code != "000000" else "111111"
    assert (await _attempt(app, owner, user.email, PASSWORD)).status_code == 429
    assert (await _attempt(app, owner, user.email, PASSWORD, wrong_code)).status_code == 429
    assert (await _attempt(app, owner, user.email, WRONG, code)).status_code == 429
    assert (await _attempt(app, owner, user.email, PASSWORD, code)).status_code == 200
    # The delay still holds for a password alone.
    assert (await _attempt(app, random_address(), user.email, PASSWORD)).status_code == 429
    events = await audit_events(database, object_id=str(user.id))
    locks = [json.loads(e.details) for e in events if e.action == "session.lock"]
    assert [lock["throttle"] for lock in locks] == ["account"]
    delayed = [
        json.loads(e.details)
        for e in events
        if e.action == "session.create" and '"throttle": "account"' in e.details
    ]
    assert [event.get("failed") for event in delayed] == [None, "otp_invalid", "bad_password", None]
    allowed = [e for e in events if e.action == "session.create" and e.outcome == "allowed"]
    assert len(allowed) == 1 and '"second_factor": "totp"' in allowed[0].details


async def test_address_counts_are_shared_by_two_instances(app: FastAPI, database: Database) -> None:
    address = random_address()
    limits = {"login_address_max_failures": 4}
    async with another_instance(app, **limits) as first, another_instance(app, **limits) as second:
        statuses = [
            (await _attempt(instance, address, _new_email(), WRONG)).status_code
            for instance in (first, second, first, second)
        ]
        assert statuses == [401] * 4
        assert (await _attempt(first, address, _new_email(), WRONG)).status_code == 429
        assert (await _attempt(second, address, _new_email(), WRONG)).status_code == 429


async def test_a_refused_attempt_counts_towards_no_other_throttle(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    attacker = random_address()
    for _ in range(5):
        await _attempt(app, attacker, user.email, WRONG)
    # Refused unchecked at the locked pair: these must not build up the account-wide delay.
    for _ in range(30):
        assert (await _attempt(app, attacker, user.email, WRONG)).status_code == 429
    assert (await _attempt(app, random_address(), user.email, PASSWORD)).status_code == 200


async def test_successful_sign_ins_do_not_build_up_the_account_wide_delay(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with another_instance(app, login_account_max_failures=3) as instance:
        for _ in range(3):
            assert (
                await _attempt(instance, random_address(), user.email, PASSWORD)
            ).status_code == 200
        # Each success was taken back off the account-wide count: only failures fill it.
        assert (await _attempt(instance, random_address(), user.email, WRONG)).status_code == 401
        assert (await _attempt(instance, random_address(), user.email, PASSWORD)).status_code == 200
