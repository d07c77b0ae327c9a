"""Password rules and argon2id hashing (in a worker thread, never on the event loop)."""

from functools import lru_cache
from importlib import resources

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_LENGTH = 12
MAX_LENGTH = 256


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = resources.files("ctcp.data").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("# ")
    )


def password_problems(password: str, *, email: str) -> list[str]:
    """What is wrong with a new password; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    lowered = password.lower()
    if lowered in _common_passwords():
        problems.append("is too common")
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 3 and local_part in lowered:
        problems.append("must not contain the e-mail address")
    return problems


class PasswordHasher:
    """argon2id with the configured cost; verifies and upgrades older hashes."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hash = PasswordHash(
            (Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),)
        )
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """(valid, new hash when the stored one used other parameters)."""
        if password_hash is None and self._dummy_hash is None:
            # Verified against when the e-mail is unknown, so both cost the same time.
            self._dummy_hash = await self.hash("timing-equaliser-not-a-password")
        target = password_hash or self._dummy_hash
        assert target is not None
        valid, updated = await anyio.to_thread.run_sync(
            self._hash.verify_and_update, password, target
        )
        return (valid and password_hash is not None), updated
