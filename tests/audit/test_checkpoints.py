"""Signed checkpoints catch what the triggers cannot: a chain rewritten by its owner."""

import asyncio
import json
import logging
import shutil
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlmodel import col, select

from ctcp.app import create_app
from ctcp.audit import checkpoints
from ctcp.audit import service as audit
from ctcp.audit.checkpoints import SIGNER_GRACE
from ctcp.audit.models import AuditChainHead, AuditEvent
from ctcp.audit.service import AuditContext
from ctcp.core.clock import clock
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
    forged = json.loads(checkpoints.checkpoint_path(directory, 1).read_text())
    # The good signature, another statement (the next number, linked to the first).
    forged |= {"sequence": 2, "position": later, "hash": "f" * 64}
    forged["previous"] = checkpoints.read_checkpoint(directory, 1).digest()
    checkpoints.checkpoint_path(directory, 2).write_text(json.dumps(forged))
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
    # A worker that signed a later head as the same number lost the race: it signs again.
    assert checkpoints.write_checkpoint(tmp_path, checkpoints.sign(key, 9, "c" * 64, now)) is None
    assert checkpoints.read_checkpoint(tmp_path, 1).hash == "a" * 64
    assert checkpoints.stored_sequences(tmp_path) == [1]


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
        # The auditor holds the checkpoint exported earlier against what is stored now.
        expect = f"expect_position={checkpoint.position}&expect_hash="
        kept = await client.get(f"/api/v1/audit-events/verify?{expect}{checkpoint.hash}")
        other = await client.get(f"/api/v1/audit-events/verify?{expect}{'e' * 64}")
        half = await client.get("/api/v1/audit-events/verify?expect_position=1")
    assert [item["position"] for item in exported["items"]] == [checkpoint.position]
    # All the auditor needs to check it again, link and signature included.
    assert checkpoints.Checkpoint.of_json(exported["items"][0]) == checkpoint
    assert exported["public_keys"][0]["key_id"] == checkpoint.key_id
    assert verified["valid"] is True and verified["checkpoint_status"] == "protected"
    assert verified["last_checkpoint_id"] == checkpoint.position
    assert kept.json()["valid"] is True
    assert other.json()["valid"] is False and "rewritten" in other.json()["reason"]
    assert half.status_code == 422
    assert await audit_events(database, action="audit.checkpoints.export")
    # At shutdown the app's own signer vouched for what the requests added since.
    stored = checkpoints.exported_checkpoints(tmp_path / "checkpoints")
    assert max(item.position for item in stored) > checkpoint.position
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


def _checkpoint_dir(env: dict[str, str]) -> Path:
    return Path(env["CTCP_VAR_DIR"]) / "audit-checkpoints"


def test_emptied_checkpoint_directory_fails_verification(env: dict[str, str]) -> None:
    env = env | {"CTCP_AUDIT_CHECKPOINT_EVERY_EVENTS": "2"}
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    _record(env["CTCP_DATABASE_URL"], 5)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    assert run_ctcp(env, "audit", "verify")[0] == 0
    shutil.rmtree(_checkpoint_dir(env))
    # Past the grace a running signer has to catch up with a burst of writes.
    clock.advance(SIGNER_GRACE + timedelta(seconds=1))
    code, output = run_ctcp(env, "audit", "verify")
    assert code == 1, output
    assert "not vouched for from event 1" in _words(output)
    assert "follow no checkpoint" in _words(output)


def test_stale_newest_checkpoint_fails_verification(env: dict[str, str]) -> None:
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    url = env["CTCP_DATABASE_URL"]
    signed = _record(url, 2)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    # A quiet chain: an old checkpoint and a fresh event are what the signer leaves too.
    clock.advance(timedelta(minutes=45))
    _record(url, 1)
    assert run_ctcp(env, "audit", "verify")[0] == 0
    # Twice the interval later, nothing has signed that event: the protection stopped.
    clock.advance(timedelta(minutes=21))
    code, output = run_ctcp(env, "audit", "verify")
    assert code == 1, output
    assert f"not vouched for from event {signed + 1}" in _words(output)
    assert "CTCP_AUDIT_CHECKPOINT_EVERY_MINUTES" in _words(output)


def test_checkpoint_removed_from_the_middle_fails_verification(env: dict[str, str]) -> None:
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    url = env["CTCP_DATABASE_URL"]
    first = _record(url, 2)
    for _ in range(3):
        assert run_ctcp(env, "audit", "checkpoint")[0] == 0
        _record(url, 2)
    checkpoints.checkpoint_path(_checkpoint_dir(env), 2).unlink()
    code, output = run_ctcp(env, "audit", "verify")
    assert code == 1, output
    assert f"broken at event {first + 1}" in _words(output)
    assert "checkpoint 2 is missing" in _words(output)


def test_removed_newest_checkpoint_is_caught_with_the_auditors_copy(
    env: dict[str, str], backend: str, tmp_path: Path
) -> None:
    assert run_ctcp(env, "audit", "keygen")[0] == 0
    url = env["CTCP_DATABASE_URL"]
    first = _record(url, 2)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    newest = _record(url, 3)
    assert run_ctcp(env, "audit", "checkpoint")[0] == 0
    code, exported = run_ctcp(env, "audit", "export-checkpoints")
    assert code == 0
    kept = tmp_path / "kept.jsonl"  # what the auditor took away
    kept.write_text(exported)
    last = checkpoints.parse_checkpoint(exported.splitlines()[-1])
    assert (last.sequence, last.position) == (2, newest)
    checkpoints.checkpoint_path(_checkpoint_dir(env), 2).unlink()
    # The files alone cannot tell: checkpoint 1 still vouches for what it signed.
    assert run_ctcp(env, "audit", "verify")[0] == 0
    code, output = run_ctcp(env, "audit", "verify", "--expect-checkpoint", str(kept))
    assert code == 1 and "no longer stored" in _words(output), output
    # Then the events after checkpoint 1 are rewritten, as the removal meant to hide.
    _as_owner_bypassing_triggers(url, backend, f"rewrite:{first + 1}")
    by_hash = ("--expect-position", str(last.position), "--expect-hash", last.hash)
    for expectation in (("--expect-checkpoint", str(kept)), by_hash):
        code, output = run_ctcp(env, "audit", "verify", *expectation)
        assert code == 1, output
        assert f"broken at event {first + 1}" in _words(output)
        assert "hash of the checkpoint you expected" in _words(output)


@pytest.mark.parametrize("stray", ["event-past-the-head", "head-moved-back"])
async def test_rows_outside_the_chain_fail_verification(
    fresh_database_url: str, stray: str
) -> None:
    database = Database(fresh_database_url)
    try:
        async with database.transaction() as session:
            audit.record(session, AuditContext(), "test.before.stray")
        async with database.transaction() as session:
            head = await session.get(AuditChainHead, 1)
            assert head is not None
            last_id, last_hash = head.last_id, head.last_hash
            if stray == "event-past-the-head":
                # The app's role may INSERT any id: a row the walk up to the head never reads.
                row = (await session.get(AuditEvent, last_id)).model_dump()  # type: ignore[union-attr]
                row |= {"id": last_id + 5, "action": "test.smuggled", "prev_hash": last_hash}
                row["hash"] = audit.compute_hash(row)
                session.add(AuditEvent(**row))
                expected = last_id + 5
            else:
                # ... and UPDATE the head: moved back one event, the last one is hidden.
                previous = (await session.get(AuditEvent, last_id - 1)).hash  # type: ignore[union-attr]
                await session.exec(
                    update(AuditChainHead)
                    .where(col(AuditChainHead.id) == 1)
                    .values(last_id=last_id - 1, last_hash=previous)
                )
                expected = last_id
        async with database.read_sessionmaker() as session:
            result = await audit.verify_chain(session)
    finally:
        await database.dispose()
    assert result.valid is False
    assert result.first_invalid_id == expected
    assert "outside the chain" in (result.problem or "")


async def test_loop_signer_refuses_a_chain_rewritten_since_its_last_poll(
    fresh_database_url: str, backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "checkpoints"
    database = Database(fresh_database_url)
    signer = checkpoints.Checkpointer(
        database,
        signing_key=checkpoints.Ed25519PrivateKey.generate(),
        directory=directory,
        every_events=1000,
        every_minutes=10,
    )
    try:
        first = await signer.run_once()  # nothing signed yet: due at once
        assert first is not None
        await asyncio.to_thread(_record, fresh_database_url, 3)
        assert await signer.run_once() is None  # not due: the head is only remembered
        rewrite = f"rewrite:{first.position + 2}"
        await asyncio.to_thread(_as_owner_bypassing_triggers, fresh_database_url, backend, rewrite)
        with caplog.at_level(logging.ERROR, logger="ctcp.audit.checkpoints"):
            assert await signer.run_once(final=True) is None
            assert await signer.run_once(final=True) is None  # and it keeps refusing
        assert "rewritten since" in caplog.text
        assert [item.sequence for item in checkpoints.exported_checkpoints(directory)] == [1]
    finally:
        await database.dispose()


async def test_a_signer_whose_snapshot_another_signer_overtook_signs_on(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """Several signers (workers, a loop): one that read the chain before another signed
    a later head takes a fresh snapshot instead of crying tampering (SQLite keeps a read
    transaction's first snapshot)."""
    directory = tmp_path / "checkpoints"
    key = checkpoints.Ed25519PrivateKey.generate()
    database = Database(fresh_database_url)
    try:
        await asyncio.to_thread(_record, fresh_database_url, 2)
        async with database.read_sessionmaker() as late:
            await audit.chain_length(late)  # its snapshot: two events
            head = await asyncio.to_thread(_record, fresh_database_url, 1)
            async with database.read_sessionmaker() as quick:
                ahead = await checkpoints.take_checkpoint(
                    quick, signing_key=key, directory=directory
                )
            assert ahead is not None and ahead.position == head
            behind = await checkpoints.take_checkpoint(late, signing_key=key, directory=directory)
        assert behind is not None and behind.position == head
    finally:
        await database.dispose()
