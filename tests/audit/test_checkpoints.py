"""Signed checkpoints catch what the triggers cannot: a chain rewritten by its owner."""

import asyncio
import json
import stat
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlmodel import col, select

from ctcp.app import create_app
from ctcp.audit import checkpoints
from ctcp.audit import service as audit
from ctcp.audit.models import AuditChainHead, AuditEvent
from ctcp.audit.service import AuditContext
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.factories import audit_events, make_user, new_client, run_ctcp, sign_in

SQLITE_GUARDS = [
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN "
    "SELECT RAISE(ABORT, 'audit_events is append-only (UPDATE refused)'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN "
    "SELECT RAISE(ABORT, 'audit_events is append-only (DELETE refused)'); END",
]


@pytest.fixture
def env(fresh_database_url: str, tmp_path: Path) -> dict[str, str]:
    """The CLI's settings: a fresh database, a signing key, checkpoints under var/."""
    return {
        "CTCP_DATABASE_URL": fresh_database_url,
        "CTCP_VAR_DIR": str(tmp_path / "var"),
        "CTCP_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "keys" / "audit-signing.key"),
    }


def _record(url: str, count: int) -> int:
    """Write `count` events; the chain's length afterwards."""

    async def run() -> int:
        database = Database(url)
        try:
            async with database.transaction() as session:
                for n in range(count):
                    audit.record(session, AuditContext(), f"test.checkpointed.{n}")
            async with database.sessionmaker() as session:
                return await audit.chain_length(session)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _as_owner_bypassing_triggers(url: str, backend: str, work: str) -> None:
    """What the penetration tester did: bypass the append-only triggers, then `work`.

    `work` is "rewrite:ID" (edit event ID, recompute every later hash with the app's own
    function, move the chain head) or "truncate:ID" (drop the events after ID).
    """
    action, _, argument = work.partition(":")
    event_id = int(argument)

    async def run() -> None:
        database = Database(url)
        try:
            async with database.transaction() as session:
                if backend == "postgresql":
                    # The test connection is a superuser, as docker-compose's app used to be.
                    await session.exec(text("SET LOCAL session_replication_role = replica"))  # type: ignore[call-overload]
                else:
                    await session.exec(text("DROP TRIGGER audit_events_no_update"))  # type: ignore[call-overload]
                    await session.exec(text("DROP TRIGGER audit_events_no_delete"))  # type: ignore[call-overload]
                kept = await session.get(
                    AuditEvent, event_id if action == "truncate" else event_id - 1
                )
                assert kept is not None
                last_id, previous = kept.id, kept.hash
                if action == "rewrite":
                    statement = select(AuditEvent).where(col(AuditEvent.id) >= event_id)
                    rows = (await session.exec(statement.order_by(col(AuditEvent.id)))).all()
                    for row in rows:
                        fields = row.model_dump()
                        if row.id == event_id:
                            fields["details"] = json.dumps({"forged": True})
                        fields["prev_hash"] = previous
                        fields["hash"] = previous = audit.compute_hash(fields)
                        last_id = row.id
                        await session.exec(
                            update(AuditEvent)
                            .where(col(AuditEvent.id) == row.id)
                            .values(
                                details=fields["details"],
                                prev_hash=fields["prev_hash"],
                                hash=fields["hash"],
                            )
                        )
                else:
                    await session.exec(text(f"DELETE FROM audit_events WHERE id > {event_id}"))  # type: ignore[call-overload]
                await session.exec(
                    update(AuditChainHead)
                    .where(col(AuditChainHead.id) == 1)
                    .values(last_id=last_id, last_hash=previous)
                )
                if backend == "sqlite":
                    for guard in SQLITE_GUARDS:
                        await session.exec(text(guard))  # type: ignore[call-overload]
        finally:
            await database.dispose()

    asyncio.run(run())


def _words(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize("signed", [True, False], ids=["with-checkpoints", "without"])
def test_rewritten_chain_is_caught_only_by_the_checkpoints(
    env: dict[str, str], backend: str, signed: bool
) -> None:
    if signed:
        assert run_ctcp(env, "audit", "keygen")[0] == 0
    else:
        env = {name: value for name, value in env.items() if "SIGNING" not in name}
    url = env["CTCP_DATABASE_URL"]
    first = _record(url, 3)
    if signed:
        code, output = run_ctcp(env, "audit", "checkpoint")
        assert code == 0 and f"event {first}" in _words(output)
    _record(url, 3)
    if signed:
        assert run_ctcp(env, "audit", "checkpoint")[0] == 0
        assert run_ctcp(env, "audit", "verify")[0] == 0
    _as_owner_bypassing_triggers(url, backend, f"rewrite:{first + 1}")
    code, output = run_ctcp(env, "audit", "verify")
    if not signed:
        # The hashes alone prove nothing against whoever can recompute them.
        assert code == 0 and "intact" in output
        assert "no checkpoint protects the chain" in _words(output)
        return
    assert code == 1, output
    assert f"broken at event {first + 1}" in _words(output)
    assert "rewritten" in output
    # Nor does the signer endorse the rewritten chain.
    code, output = run_ctcp(env, "audit", "checkpoint")
    assert code == 2 and "not signing" in _words(output)


def test_forged_checkpoint_fails_verification(env: dict[str, str]) -> None:
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    url = env["CTCP_DATABASE_URL"]
    good = _record(url, 2)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    later = _record(url, 2)
    directory = Path(env["CTCP_VAR_DIR"]) / "audit-checkpoints"
    forged = json.loads(checkpoints.checkpoint_path(directory, good).read_text())
    forged |= {"position": later, "hash": "f" * 64}  # the good signature, another statement
    checkpoints.checkpoint_path(directory, later).write_text(json.dumps(forged))
    code, output = run_ctcp(env, "audit", "verify")
    assert code == 1
    assert f"broken at event {good + 1}" in _words(output)
    assert "signature is not valid" in _words(output)


def test_truncated_chain_fails_verification(env: dict[str, str], backend: str) -> None:
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    url = env["CTCP_DATABASE_URL"]
    first = _record(url, 2)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    last = _record(url, 3)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    _as_owner_bypassing_triggers(url, backend, f"truncate:{last - 2}")
    code, output = run_ctcp(env, "audit", "verify")
    assert code == 1
    assert f"broken at event {first + 1}" in _words(output)
    assert "events were removed" in _words(output)


def test_keygen_writes_a_private_key_only_its_owner_reads(env: dict[str, str]) -> None:
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    key = Path(env["CTCP_AUDIT_SIGNING_KEY_FILE"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert Path(f"{key}.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    code, output = run_ctcp(env, "audit", "keygen")
    assert code == 2 and "refusing to overwrite" in _words(output)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_checkpoints_are_never_overwritten_with_another_hash(tmp_path: Path) -> None:
    key = checkpoints.Ed25519PrivateKey.generate()
    now = checkpoints.clock.now()
    stored = checkpoints.write_checkpoint(tmp_path, checkpoints.sign(key, 7, "a" * 64, now))
    again = checkpoints.write_checkpoint(tmp_path, checkpoints.sign(key, 7, "a" * 64, now))
    assert again == stored  # a second worker signing the same head agrees
    with pytest.raises(checkpoints.CheckpointRefusedError):
        checkpoints.write_checkpoint(tmp_path, checkpoints.sign(key, 7, "b" * 64, now))
    assert checkpoints.read_checkpoint(tmp_path, 7).hash == "a" * 64


async def test_auditor_exports_checkpoints_and_verify_reports_them(
    fresh_database_url: str, settings: Settings, tmp_path: Path
) -> None:
    key_file = tmp_path / "signing.key"
    checkpoints.generate_signing_key(key_file, tmp_path / "signing.pub")
    signed = settings.model_copy(
        update={
            "database_url": fresh_database_url,
            "audit_signing_key_file": key_file,
            "audit_checkpoint_dir": tmp_path / "checkpoints",
        }
    )
    app: FastAPI = create_app(signed)
    database = Database(fresh_database_url)
    auditor = await make_user(database, roles=("auditor",))
    async with app.router.lifespan_context(app), new_client(app) as client:
        await sign_in(client, auditor.email)
        async with database.read_sessionmaker() as session:
            checkpoint = await checkpoints.take_checkpoint(
                session,
                signing_key=checkpoints.load_signing_key(key_file),
                directory=tmp_path / "checkpoints",
            )
        assert checkpoint is not None
        exported = (await client.get("/api/v1/audit-events/checkpoints")).json()
        verified = (await client.get("/api/v1/audit-events/verify")).json()
    assert [item["position"] for item in exported["items"]] == [checkpoint.position]
    assert exported["public_keys"][0]["key_id"] == checkpoint.key_id
    assert verified["valid"] is True and verified["checkpoint_status"] == "protected"
    assert verified["last_checkpoint_id"] == checkpoint.position
    assert await audit_events(database, action="audit.checkpoints.export")
    # At shutdown the app's own signer vouched for what the requests added since.
    assert max(checkpoints.stored_positions(tmp_path / "checkpoints")) > checkpoint.position
    await database.dispose()


async def test_only_auditors_export_checkpoints(app: FastAPI, database: Database) -> None:
    async with new_client(app) as anonymous:
        assert (await anonymous.get("/api/v1/audit-events/checkpoints")).status_code == 401
    for role in ("platform_admin", "cted_analyst", "auditor"):
        user = await make_user(database, roles=(role,))
        async with new_client(app) as client:
            await sign_in(client, user.email)
            response = await client.get("/api/v1/audit-events/checkpoints")
        assert response.status_code == (200 if role == "auditor" else 403), role
    # The shared test app has no key: nothing to export, and it says so by being empty.
    assert response.json() == {"public_keys": [], "items": []}
