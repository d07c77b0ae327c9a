"""Signed checkpoints of the audit chain, kept outside the database.

Certificate Transparency's signed tree heads, for a hash chain: every so often the
chain head (the last event's id and hash) is signed with an Ed25519 key that the
database never sees, and written as a file that is never overwritten. Whoever can
rewrite the database can recompute every hash, but not re-sign the checkpoints: verify
compares the chain against them. The checkpoints are chained too (a sequence number and
the previous one's digest), and verify fails when the newest lags the head by more than
twice the signing interval, so removing checkpoints does not go unseen either.
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

STATEMENT_VERSION = 2
STATEMENT_HEADER = f"ctcp-audit-checkpoint/v{STATEMENT_VERSION}"
# What the first checkpoint's `previous` holds, as there is none before it.
FIRST_PREVIOUS = "0" * 64
FILE_NAME = re.compile(r"^checkpoint-(\d{20})\.json$")
CheckpointStatus = Literal["protected", "unprotected", "failed"]
# How long a running signer may take to sign what was written (it polls every 5 s).
SIGNER_GRACE = timedelta(minutes=1)


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
    """A signed statement: event `position` of the chain had hash `hash` at time `at`.

    Checkpoints form a chain of their own: each carries its sequence number (1, 2, ...)
    and the digest of the previous one's statement, so a checkpoint removed from the
    middle leaves a gap, and one replaced breaks the link of the next.
    """

    sequence: int
    position: int
    hash: str
    previous: str
    at: datetime
    key_id: str
    signature: bytes

    def statement(self) -> bytes:
        return statement_bytes(
            self.sequence, self.position, self.hash, self.previous, self.at, self.key_id
        )

    def digest(self) -> str:
        """What the next checkpoint's `previous` holds: the SHA-256 of this statement."""
        return hashlib.sha256(self.statement()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {
            "version": STATEMENT_VERSION,
            "sequence": self.sequence,
            "position": self.position,
            "hash": self.hash,
            "previous": self.previous,
            "at": self.at.isoformat(timespec="microseconds"),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def of_json(cls, data: Mapping[str, Any]) -> "Checkpoint":
        if data.get("version") != STATEMENT_VERSION:
            raise ValueError("unknown checkpoint version")
        at = datetime.fromisoformat(str(data["at"]))
        if at.tzinfo is None:
            raise ValueError("checkpoint time without a zone")
        return cls(
            sequence=int(data["sequence"]),
            position=int(data["position"]),
            hash=str(data["hash"]),
            previous=str(data["previous"]),
            at=at,
            key_id=str(data["key_id"]),
            signature=base64.b64decode(str(data["signature"]), validate=True),
        )


def statement_bytes(
    sequence: int, position: int, event_hash: str, previous: str, at: datetime, signer: str
) -> bytes:
    """The exact bytes a checkpoint's signature covers (documented for auditors' own tools)."""
    return (
        f"{STATEMENT_HEADER}\nsequence={sequence}\nposition={position}\nhash={event_hash}\n"
        f"previous={previous}\nat={at.isoformat(timespec='microseconds')}\nkey_id={signer}\n"
    ).encode()


def sign(
    signing_key: Ed25519PrivateKey,
    position: int,
    event_hash: str,
    at: datetime,
    *,
    after: "Checkpoint | None" = None,
) -> Checkpoint:
    """The checkpoint of event `position` that follows `after` (None: the first one)."""
    signer = key_id(signing_key.public_key())
    sequence = after.sequence + 1 if after else 1
    previous = after.digest() if after else FIRST_PREVIOUS
    statement = statement_bytes(sequence, position, event_hash, previous, at, signer)
    return Checkpoint(
        sequence, position, event_hash, previous, at, signer, signing_key.sign(statement)
    )


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


def checkpoint_path(directory: Path, sequence: int) -> Path:
    return directory / f"checkpoint-{sequence:020d}.json"


def stored_sequences(directory: Path) -> list[int]:
    """Sequence numbers of the checkpoint files in `directory`, in order."""
    if not directory.is_dir():
        return []
    found = (FILE_NAME.match(entry.name) for entry in directory.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its JSON; ValueError when the text is not one."""
    try:
        return Checkpoint.of_json(json.loads(text))
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise ValueError(f"unreadable: {error}") from error


def read_checkpoint(directory: Path, sequence: int) -> Checkpoint:
    """The checkpoint stored as number `sequence`; ValueError when the file is not one."""
    try:
        text = checkpoint_path(directory, sequence).read_text()
    except OSError as error:
        raise ValueError(f"unreadable: {error}") from error
    checkpoint = parse_checkpoint(text)
    if checkpoint.sequence != sequence:
        raise ValueError(f"its file name says number {sequence}, its content {checkpoint.sequence}")
    return checkpoint


def write_checkpoint(directory: Path, checkpoint: Checkpoint) -> Checkpoint | None:
    """Store `checkpoint` unless its sequence number is taken; never overwrite a file.

    Several workers and instances may sign at once: the file is linked into place
    atomically and exclusively under its sequence number, so the first one wins. A loser
    that signed the same event finds the same hash (returned); one that signed another
    event gets None and signs again after the winner. Another hash for the same event is
    a conflict: the chain was rewritten.
    """
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, checkpoint.sequence)
    draft = directory / f".{final.name}.{secrets.token_hex(6)}.tmp"
    with open(draft, "x", encoding="utf-8") as file:
        file.write(json.dumps(checkpoint.as_json(), sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
    try:
        draft.chmod(0o444)
        os.link(draft, final)
    except FileExistsError:
        existing = read_checkpoint(directory, checkpoint.sequence)
        if existing.position != checkpoint.position:
            return None
        if existing.hash != checkpoint.hash:
            raise CheckpointRefusedError(
                f"checkpoint {checkpoint.sequence} already vouches for another hash of event "
                f"{checkpoint.position}: the chain was rewritten (run `ctcp audit verify`)"
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


def latest_checkpoint(directory: Path, keys: Mapping[str, Ed25519PublicKey]) -> Checkpoint | None:
    """The newest checkpoint, which the next one will follow; refused when it is not good."""
    sequences = stored_sequences(directory)
    if not sequences:
        return None
    try:
        checkpoint = read_checkpoint(directory, sequences[-1])
    except ValueError as error:
        raise CheckpointRefusedError(
            f"the newest checkpoint file (number {sequences[-1]}) is {error}: not signing "
            "after it (run `ctcp audit verify`)"
        ) from error
    problem = signature_problem(checkpoint, keys)
    if problem is not None:
        raise CheckpointRefusedError(
            f"the newest checkpoint (number {checkpoint.sequence}): {problem}: not signing "
            "after it (run `ctcp audit verify`)"
        )
    return checkpoint


async def _refuse_unless_through(
    session: AsyncSession, seen: tuple[int, str], head: int, walked: Mapping[int, str]
) -> None:
    """Refuse when the chain no longer passes through the head `seen` at an earlier poll."""
    seen_id, seen_hash = seen
    if seen_id == 0:
        return
    if seen_id > head:
        raise CheckpointRefusedError(
            f"the chain head went back from event {seen_id} to {head} since the last poll: "
            "events were removed; not signing (run `ctcp audit verify`)"
        )
    stored = walked.get(seen_id) or await service.event_hash(session, seen_id)
    if stored != seen_hash:
        raise CheckpointRefusedError(
            f"event {seen_id} no longer has the hash it had at the last poll: the chain was "
            "rewritten since; not signing it (run `ctcp audit verify`)"
        )


async def take_checkpoint(
    session: AsyncSession,
    *,
    signing_key: Ed25519PrivateKey,
    directory: Path,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    seen: tuple[int, str] | None = None,
) -> Checkpoint | None:
    """Sign the chain head, after checking that the chain still extends the last checkpoint.

    Only the events since that checkpoint are walked, so a one-shot signer cannot tell a
    rewrite of those events; a long-running one passes the head it `seen` at its previous
    poll, and the chain must still pass through it. `keys` verify the newest checkpoint
    (the signing key's own always does). None when the chain is empty.
    """
    public_key = signing_key.public_key()
    known = {**(keys or {}), key_id(public_key): public_key}
    for _attempt in range(5):
        # A fresh snapshot each attempt: SQLite keeps a read transaction's first snapshot,
        # older than the checkpoint another signer may just have written.
        await session.rollback()
        previous = latest_checkpoint(directory, known)
        after = (previous.position, previous.hash) if previous else (0, service.GENESIS_HASH)
        watched = [seen[0]] if seen is not None and seen[0] > after[0] else []
        result = await service.verify_chain(session, after=after, hashes_at=watched)
        if not result.valid:
            raise CheckpointRefusedError(
                f"the audit chain is broken at event {result.first_invalid_id} since the last "
                f"checkpoint ({result.problem}): not signing it (run `ctcp audit verify`)"
            )
        if seen is not None:
            await _refuse_unless_through(session, seen, result.end, result.hashes)
        if result.end == 0:
            return None
        if previous is not None and previous.position == result.end:
            return previous
        signed = sign(signing_key, result.end, result.end_hash, clock.now(), after=previous)
        stored = write_checkpoint(directory, signed)
        if stored is not None:
            return stored
    raise CheckpointRefusedError("other signers keep taking the next checkpoint number")


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

    Every worker of every instance may run one; the next checkpoint number goes to one
    of them, so they agree instead of competing. It remembers the head of its previous
    poll and signs nothing once the chain no longer passes through it (a rewrite of
    events not yet signed); that refusal lasts until the process restarts. A failure is
    logged, never raised into the app.
    """

    def __init__(
        self,
        database: Database,
        *,
        signing_key: Ed25519PrivateKey,
        directory: Path,
        every_events: int,
        every_minutes: float,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        poll_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.signing_key = signing_key
        self.directory = directory
        self.every_events = every_events
        self.every_minutes = every_minutes
        self.poll_seconds = poll_seconds
        public_key = signing_key.public_key()
        self._keys = {**(keys or {}), key_id(public_key): public_key}
        self._seen: tuple[int, str] | None = None
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
            latest = latest_checkpoint(self.directory, self._keys)
            async with self.database.read_sessionmaker() as session:
                head = await service.chain_head(session)
                if self._seen is not None:
                    await _refuse_unless_through(session, self._seen, head[0], {})
                due = checkpoint_due(
                    latest,
                    head[0],
                    every_events=1 if final else self.every_events,
                    every_minutes=self.every_minutes,
                )
                if not due:
                    self._seen = head
                    return None
                checkpoint = await take_checkpoint(
                    session,
                    signing_key=self.signing_key,
                    directory=self.directory,
                    keys=self._keys,
                    seen=self._seen,
                )
                if checkpoint is not None:
                    self._seen = (checkpoint.position, checkpoint.hash)
                return checkpoint
        except CheckpointRefusedError as error:
            logger.error("not signing the audit chain: %s", error.detail)
            return None
        except Exception:
            logger.exception("could not checkpoint the audit chain")
            return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self.run_once()


@dataclass(frozen=True)
class ExpectedCheckpoint:
    """A checkpoint an auditor exported earlier: it must still be stored, and still match."""

    position: int
    hash: str
    sequence: int | None = None


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
    # The chain may be intact, but the checkpoints stopped vouching for it (removed, or
    # the signer stopped): the events after the last good one cannot be trusted.
    stale: bool = False


@dataclass(frozen=True)
class Freshness:
    """How far behind the head the newest checkpoint may be before verify fails."""

    every_events: int
    every_minutes: float

    @classmethod
    def of(cls, settings: Settings) -> "Freshness":
        return cls(settings.audit_checkpoint_every_events, settings.audit_checkpoint_every_minutes)


def _read_all(directory: Path, sequences: list[int]) -> dict[int, Checkpoint | str]:
    found: dict[int, Checkpoint | str] = {}
    for sequence in sequences:
        try:
            found[sequence] = read_checkpoint(directory, sequence)
        except ValueError as error:
            found[sequence] = str(error)
    return found


def _checkpoint_chain_problem(
    checkpoint: Checkpoint, number: int, last_good: Checkpoint | None
) -> str | None:
    """Why `checkpoint`, stored as `number`, does not follow `last_good` in the sequence."""
    expected = last_good.sequence + 1 if last_good else 1
    if number != expected:
        missing = f"{expected}" if number == expected + 1 else f"{expected} to {number - 1}"
        return (
            f"checkpoint {missing} is missing (the next stored is {number}): "
            "checkpoints were removed"
        )
    if checkpoint.previous != (last_good.digest() if last_good else FIRST_PREVIOUS):
        return f"checkpoint {number} does not link to checkpoint {expected - 1}: it was replaced"
    if last_good is not None and checkpoint.position <= last_good.position:
        return f"checkpoint {number} goes back to event {checkpoint.position}"
    return None


async def _staleness(
    session: AsyncSession,
    *,
    end: int,
    last_good: Checkpoint | None,
    freshness: Freshness,
) -> str | None:
    """Why the newest checkpoint is too far behind the head to be the newest signed."""
    vouched = last_good.position if last_good else 0
    behind = end - vouched
    if behind <= 0:
        return None
    since = f"checkpoint {last_good.sequence} (event {vouched})" if last_good else "no checkpoint"
    now = clock.now()
    first_after = await service.event_time(session, vouched + 1)
    # A burst of writes can outrun the signer between two polls: the count alone fails
    # only once the first unsigned event is older than the grace a signer needs.
    settled = first_after is not None and now - first_after > SIGNER_GRACE
    if behind > 2 * freshness.every_events and settled:
        return (
            f"{behind} events follow {since}, more than twice "
            f"CTCP_AUDIT_CHECKPOINT_EVERY_EVENTS ({freshness.every_events}): the newest "
            "checkpoints were removed, or the signer stopped"
        )
    limit = timedelta(minutes=2 * freshness.every_minutes)
    if (last_good is None or now - last_good.at > limit) and (
        first_after is not None and now - first_after > limit
    ):
        return (
            f"event {vouched + 1}, recorded at {first_after.isoformat()}, and {since} are "
            "older than twice CTCP_AUDIT_CHECKPOINT_EVERY_MINUTES: the newest checkpoints "
            "were removed, or the signer stopped"
        )
    return None


async def verify_with_checkpoints(
    session: AsyncSession,
    *,
    directory: Path,
    keys: Mapping[str, Ed25519PublicKey],
    freshness: Freshness | None = None,
    expected: ExpectedCheckpoint | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChainVerdict:
    """Walk the chain, then hold it against every checkpoint, in sequence.

    A checkpoint must carry a good signature, follow the previous one (next number,
    its digest), and the event at its position must have exactly its hash; a chain that
    ends before it was truncated. With a key and `freshness`, the newest checkpoint must
    not lag the head by more than twice the signing interval (in events, or in time
    since the first event it leaves out); an `expected` checkpoint (the newest an auditor
    exported) must still be stored. On the first failure the first event after the last
    good checkpoint is named: everything up to it is vouched for, what follows is not.
    """
    sequences = stored_sequences(directory) if keys else []
    stored = _read_all(directory, sequences)
    watched = {item.position for item in stored.values() if isinstance(item, Checkpoint)}
    if expected is not None:
        watched.add(expected.position)
    chain = await service.verify_chain(session, progress=progress, hashes_at=watched)
    last_good: Checkpoint | None = None
    good: list[Checkpoint] = []
    failure: str | None = None
    for number in sequences:
        checkpoint = stored[number]
        if isinstance(checkpoint, str):
            failure = f"checkpoint file {number} is {checkpoint}"
            break
        if chain.first_invalid_id is not None and checkpoint.position >= chain.first_invalid_id:
            break  # the chain itself is broken before this checkpoint: reported as such
        problem = signature_problem(checkpoint, keys)
        if problem is not None:
            failure = f"checkpoint {number} (event {checkpoint.position}): {problem}"
            break
        failure = _checkpoint_chain_problem(checkpoint, number, last_good)
        if failure is not None:
            break
        if checkpoint.position > chain.end:
            failure = (
                f"the chain ends at event {chain.end}, but a checkpoint signed at "
                f"{checkpoint.at.isoformat()} vouches for event {checkpoint.position}: "
                "events were removed"
            )
            break
        if chain.hashes.get(checkpoint.position) != checkpoint.hash:
            failure = (
                f"event {checkpoint.position} no longer has the hash signed at "
                f"{checkpoint.at.isoformat()}: the chain was rewritten after event "
                f"{last_good.position if last_good else 0}"
            )
            break
        last_good = checkpoint
        good.append(checkpoint)
    stale = False
    if failure is None and chain.valid and expected is not None:
        failure = _expected_problem(expected, chain.end, chain.hashes, good)
    if failure is None and chain.valid and keys and freshness is not None:
        failure = await _staleness(session, end=chain.end, last_good=last_good, freshness=freshness)
        stale = failure is not None
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
            checkpoints=len(good),
            last_checkpoint_id=last_good.position if last_good else None,
            last_checkpoint_at=last_at,
            unprotected_events=max(chain.end - vouched, 0),
            reason=failure,
            stale=stale,
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
        reason = chain.problem
    return ChainVerdict(
        valid=chain.valid,
        checked=chain.checked,
        first_invalid_id=chain.first_invalid_id,
        checkpoint_status=status,
        checkpoints=len(good),
        last_checkpoint_id=last_good.position if last_good else None,
        last_checkpoint_at=last_at,
        unprotected_events=max(chain.end - vouched, 0),
        reason=reason,
    )


def _expected_problem(
    expected: ExpectedCheckpoint, end: int, hashes: Mapping[int, str], good: list[Checkpoint]
) -> str | None:
    """Why the checkpoint an auditor kept no longer holds: its event or its file changed."""
    if expected.position > end:
        return (
            f"the chain ends at event {end}, before event {expected.position} of the "
            "checkpoint you expected: events were removed"
        )
    if hashes.get(expected.position) != expected.hash:
        return (
            f"event {expected.position} no longer has the hash of the checkpoint you "
            "expected: the chain was rewritten"
        )
    for checkpoint in good:
        if (checkpoint.position, checkpoint.hash) == (expected.position, expected.hash) and (
            expected.sequence in (None, checkpoint.sequence)
        ):
            return None
    return (
        f"the checkpoint of event {expected.position} you expected is no longer stored: "
        "checkpoints were removed or replaced"
    )


async def verify_audit_chain(
    session: AsyncSession,
    settings: Settings,
    *,
    expected: ExpectedCheckpoint | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChainVerdict:
    """`verify_with_checkpoints` with the keys, directory and signing interval of `settings`."""
    return await verify_with_checkpoints(
        session,
        directory=settings.audit_checkpoints,
        keys=verifying_keys(settings),
        freshness=Freshness.of(settings),
        expected=expected,
        progress=progress,
    )


def exported_checkpoints(directory: Path) -> list[Checkpoint]:
    """Every readable checkpoint file, in chain order (verify reports the unreadable ones)."""
    exported = []
    for sequence in stored_sequences(directory):
        with contextlib.suppress(ValueError):
            exported.append(read_checkpoint(directory, sequence))
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
        keys=verifying_keys(settings),
    )
