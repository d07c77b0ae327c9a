"""Signed checkpoints of the audit chain, kept outside the database.

Certificate Transparency's signed tree heads, for a hash chain: every so often the
chain head (the last event's id and hash) is signed with an Ed25519 key that the
database never sees, and written as a file that is never overwritten. Whoever can
rewrite the database can recompute every hash, but not re-sign the checkpoints: verify
compares the chain against them.
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.core.errors import ConflictError, DomainError

logger = logging.getLogger("ctcp.audit.checkpoints")

STATEMENT_HEADER = "ctcp-audit-checkpoint/v1"
FILE_NAME = re.compile(r"^checkpoint-(\d{20})\.json$")
CheckpointStatus = Literal["protected", "unprotected", "failed"]


class CheckpointKeyError(DomainError):
    """The signing or public key is missing, unreadable or too widely readable."""

    title = "Audit checkpoint key unusable"


class CheckpointRefusedError(ConflictError):
    """The chain no longer extends the last checkpoint: signing it would launder tampering."""

    title = "Audit chain does not extend its last checkpoint"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_signing_key(path: Path, public_path: Path) -> Ed25519PublicKey:
    """Write a new private key (mode 0600, never over an existing file) and its public key."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise CheckpointKeyError(f"{path} exists: refusing to overwrite a signing key") from error
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    public_key = private_key.public_key()
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(public_key_pem(public_key))
    return public_key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The private key of `path`, refused when group or others may read it (as ssh does)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointKeyError(f"cannot read the audit signing key {path}: {error}") from error
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CheckpointKeyError(f"{path} is readable by others: chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as error:
        raise CheckpointKeyError(f"{path} is not a PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(f"{path} is not an Ed25519 key")
    return key


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every PEM public key in `path` (old keys may follow the current one after a rotation)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise CheckpointKeyError(f"cannot read the audit public key {path}: {error}") from error
    keys = []
    for block in re.findall(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", text, re.S):
        key = serialization.load_pem_public_key(block.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointKeyError(f"{path} holds a key that is not Ed25519")
        keys.append(key)
    if not keys:
        raise CheckpointKeyError(f"{path} holds no PEM public key")
    return keys


def verifying_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """The keys checkpoints are checked against, by key id: the public-key file's, and the
    signing key's own (so an auditor needs only the public key, an operator either)."""
    keys: list[Ed25519PublicKey] = []
    if settings.audit_public_key_file is not None:
        keys.extend(load_public_keys(settings.audit_public_key_file))
    if settings.audit_signing_key_file is not None:
        keys.append(load_signing_key(settings.audit_signing_key_file).public_key())
    return {key_id(key): key for key in keys}


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: event `position` of the chain had hash `hash` at time `at`."""

    position: int
    hash: str
    at: datetime
    key_id: str
    signature: bytes

    def statement(self) -> bytes:
        return statement_bytes(self.position, self.hash, self.at, self.key_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "position": self.position,
            "hash": self.hash,
            "at": self.at.isoformat(timespec="microseconds"),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def of_json(cls, data: Mapping[str, Any]) -> "Checkpoint":
        if data.get("version") != 1:
            raise ValueError("unknown checkpoint version")
        at = datetime.fromisoformat(str(data["at"]))
        if at.tzinfo is None:
            raise ValueError("checkpoint time without a zone")
        return cls(
            position=int(data["position"]),
            hash=str(data["hash"]),
            at=at,
            key_id=str(data["key_id"]),
            signature=base64.b64decode(str(data["signature"]), validate=True),
        )


def statement_bytes(position: int, event_hash: str, at: datetime, signer: str) -> bytes:
    """The exact bytes a checkpoint's signature covers (documented for auditors' own tools)."""
    return (
        f"{STATEMENT_HEADER}\nposition={position}\nhash={event_hash}\n"
        f"at={at.isoformat(timespec='microseconds')}\nkey_id={signer}\n"
    ).encode()


def sign(
    signing_key: Ed25519PrivateKey, position: int, event_hash: str, at: datetime
) -> Checkpoint:
    signer = key_id(signing_key.public_key())
    signature = signing_key.sign(statement_bytes(position, event_hash, at, signer))
    return Checkpoint(position, event_hash, at, signer, signature)


def signature_problem(checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Why the checkpoint's signature is not acceptable, or None when it is."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"signed by an unknown key {checkpoint.key_id}"
    try:
        key.verify(checkpoint.signature, checkpoint.statement())
    except InvalidSignature:
        return "its signature is not valid"
    return None


def checkpoint_path(directory: Path, position: int) -> Path:
    return directory / f"checkpoint-{position:020d}.json"


def stored_positions(directory: Path) -> list[int]:
    """Positions of the checkpoint files in `directory`, in chain order."""
    if not directory.is_dir():
        return []
    found = (FILE_NAME.match(entry.name) for entry in directory.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def read_checkpoint(directory: Path, position: int) -> Checkpoint:
    """The checkpoint stored for `position`; ValueError when the file is not one."""
    try:
        checkpoint = Checkpoint.of_json(
            json.loads(checkpoint_path(directory, position).read_text())
        )
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"unreadable: {error}") from error
    if checkpoint.position != position:
        raise ValueError(f"its file name says event {position}, its content {checkpoint.position}")
    return checkpoint


def write_checkpoint(directory: Path, checkpoint: Checkpoint) -> Checkpoint:
    """Store `checkpoint` unless its position already has one; never overwrite a file.

    Several workers and instances may sign the same head: the file is linked into place
    atomically and exclusively, so the first one wins and the others find the same hash.
    Another hash already stored for the position is a conflict: the chain was rewritten.
    """
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, checkpoint.position)
    draft = directory / f".{final.name}.{secrets.token_hex(6)}.tmp"
    with open(draft, "x", encoding="utf-8") as file:
        file.write(json.dumps(checkpoint.as_json(), sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
    try:
        draft.chmod(0o444)
        os.link(draft, final)
    except FileExistsError:
        existing = read_checkpoint(directory, checkpoint.position)
        if existing.hash != checkpoint.hash:
            raise CheckpointRefusedError(
                f"checkpoint {checkpoint.position} already vouches for another hash: "
                "the chain was rewritten (run `ctcp audit verify`)"
            ) from None
        return existing
    finally:
        draft.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        directory_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)
    return checkpoint


def latest_valid_checkpoint(
    directory: Path, keys: Mapping[str, Ed25519PublicKey]
) -> Checkpoint | None:
    """The furthest checkpoint whose signature is good (unreadable files are skipped here)."""
    for position in reversed(stored_positions(directory)):
        with contextlib.suppress(ValueError):
            checkpoint = read_checkpoint(directory, position)
            if signature_problem(checkpoint, keys) is None:
                return checkpoint
    return None


async def take_checkpoint(
    session: AsyncSession, *, signing_key: Ed25519PrivateKey, directory: Path
) -> Checkpoint | None:
    """Sign the chain head, after checking that the chain still extends the last checkpoint.

    Only the events since that checkpoint are walked. None when the chain is empty.
    """
    public_key = signing_key.public_key()
    previous = latest_valid_checkpoint(directory, {key_id(public_key): public_key})
    after = (previous.position, previous.hash) if previous else (0, service.GENESIS_HASH)
    result = await service.verify_chain(session, after=after)
    if not result.valid:
        raise CheckpointRefusedError(
            f"the audit chain is broken at event {result.first_invalid_id} since the last "
            "checkpoint: not signing it (run `ctcp audit verify`)"
        )
    if result.end == 0:
        return None
    if previous is not None and previous.position == result.end:
        return previous
    return write_checkpoint(directory, sign(signing_key, result.end, result.end_hash, clock.now()))


def checkpoint_due(
    latest: Checkpoint | None, head: int, *, every_events: int, every_minutes: float
) -> bool:
    """Whether the head has moved far enough, or long enough ago, to be signed again."""
    if head == 0 or (latest is not None and head <= latest.position):
        return False
    if latest is None or head - latest.position >= every_events:
        return True
    return clock.now() - latest.at >= timedelta(minutes=every_minutes)


class Checkpointer:
    """Background signer: checkpoints the head every N events or M minutes, whichever first.

    Every worker of every instance may run one; writes are idempotent per position, so
    they agree instead of competing. A failure is logged, never raised into the app.
    """

    def __init__(
        self,
        database: Database,
        *,
        signing_key: Ed25519PrivateKey,
        directory: Path,
        every_events: int,
        every_minutes: float,
        poll_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.signing_key = signing_key
        self.directory = directory
        self.every_events = every_events
        self.every_minutes = every_minutes
        self.poll_seconds = poll_seconds
        self._keys = {key_id(signing_key.public_key()): signing_key.public_key()}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ctcp-audit-checkpointer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.run_once(final=True)

    async def run_once(self, *, final: bool = False) -> Checkpoint | None:
        """Sign the head if due (or, at shutdown, if it moved at all); None otherwise."""
        try:
            latest = latest_valid_checkpoint(self.directory, self._keys)
            async with self.database.read_sessionmaker() as session:
                head = await service.chain_length(session)
                due = checkpoint_due(
                    latest,
                    head,
                    every_events=1 if final else self.every_events,
                    every_minutes=self.every_minutes,
                )
                if not due:
                    return None
                return await take_checkpoint(
                    session, signing_key=self.signing_key, directory=self.directory
                )
        except Exception:
            logger.exception("could not checkpoint the audit chain")
            return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self.run_once()


@dataclass(frozen=True)
class ChainVerdict:
    """The chain's own verification, and what the signed checkpoints add to it."""

    valid: bool
    checked: int
    first_invalid_id: int | None
    checkpoint_status: CheckpointStatus
    checkpoints: int
    last_checkpoint_id: int | None
    last_checkpoint_at: datetime | None
    unprotected_events: int
    reason: str | None


async def verify_with_checkpoints(
    session: AsyncSession,
    *,
    directory: Path,
    keys: Mapping[str, Ed25519PublicKey],
    progress: Callable[[int], None] | None = None,
) -> ChainVerdict:
    """Walk the chain, then hold it against every checkpoint, in chain order.

    A checkpoint must carry a good signature, and the event at its position must have
    exactly its hash; a chain that ends before it was truncated. On the first failure the
    first event after the last good checkpoint is named: everything up to that
    checkpoint is vouched for, what follows it is not.
    """
    positions = stored_positions(directory) if keys else []
    chain = await service.verify_chain(session, progress=progress, hashes_at=positions)
    last_good: Checkpoint | None = None
    good = 0
    failure: str | None = None
    for position in positions:
        if chain.first_invalid_id is not None and position >= chain.first_invalid_id:
            break  # the chain itself is broken before this checkpoint: reported as such
        try:
            checkpoint = read_checkpoint(directory, position)
        except ValueError as error:
            failure = f"checkpoint file for event {position} is {error}"
            break
        problem = signature_problem(checkpoint, keys)
        if problem is not None:
            failure = f"checkpoint of event {position}: {problem}"
            break
        if position > chain.end:
            failure = (
                f"the chain ends at event {chain.end}, but a checkpoint signed at "
                f"{checkpoint.at.isoformat()} vouches for event {position}: events were removed"
            )
            break
        if chain.hashes.get(position) != checkpoint.hash:
            failure = (
                f"event {position} no longer has the hash signed at "
                f"{checkpoint.at.isoformat()}: the chain was rewritten after event "
                f"{last_good.position if last_good else 0}"
            )
            break
        last_good = checkpoint
        good += 1
    vouched = last_good.position if last_good else 0
    last_at = last_good.at if last_good else None
    if failure is not None:
        first_invalid = vouched + 1
        if chain.first_invalid_id is not None:
            first_invalid = min(first_invalid, chain.first_invalid_id)
        return ChainVerdict(
            valid=False,
            checked=first_invalid - 1,
            first_invalid_id=first_invalid,
            checkpoint_status="failed",
            checkpoints=good,
            last_checkpoint_id=last_good.position if last_good else None,
            last_checkpoint_at=last_at,
            unprotected_events=max(chain.end - vouched, 0),
            reason=failure,
        )
    if not keys:
        status: CheckpointStatus = "unprotected"
        reason = "no audit signing or public key is configured: no checkpoint protects the chain"
    elif last_good is None:
        status = "unprotected"
        reason = "no signed checkpoint yet: no checkpoint protects the chain"
    else:
        status, reason = "protected", None
    if not chain.valid:
        reason = f"event {chain.first_invalid_id} does not match its hash or its link"
    return ChainVerdict(
        valid=chain.valid,
        checked=chain.checked,
        first_invalid_id=chain.first_invalid_id,
        checkpoint_status=status,
        checkpoints=good,
        last_checkpoint_id=last_good.position if last_good else None,
        last_checkpoint_at=last_at,
        unprotected_events=max(chain.end - vouched, 0),
        reason=reason,
    )


def exported_checkpoints(directory: Path) -> list[Checkpoint]:
    """Every readable checkpoint file, in chain order (verify reports the unreadable ones)."""
    exported = []
    for position in stored_positions(directory):
        with contextlib.suppress(ValueError):
            exported.append(read_checkpoint(directory, position))
    return exported


def checkpointer_for(database: Database, settings: Settings) -> Checkpointer | None:
    """The app's background signer where a signing key is configured (None elsewhere).

    Without one the app still runs: in development silently, in production with a
    warning, as the checkpoints may be signed by a separate `ctcp audit checkpoint --loop`
    (then only CTCP_AUDIT_PUBLIC_KEY_FILE is set here); `ctcp audit verify` tells.
    """
    if settings.audit_signing_key_file is None:
        if settings.environment == "production" and settings.audit_public_key_file is None:
            logger.warning(
                "no audit signing or public key configured: no checkpoint protects the "
                "audit chain against whoever can rewrite the database (see README)"
            )
        return None
    return Checkpointer(
        database,
        signing_key=load_signing_key(settings.audit_signing_key_file),
        directory=settings.audit_checkpoints,
        every_events=settings.audit_checkpoint_every_events,
        every_minutes=settings.audit_checkpoint_every_minutes,
    )
