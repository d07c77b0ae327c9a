"""The one source of "now", so tests can move time (session expiry, lockouts, TOTP)."""

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock UTC time with an offset that tests may advance."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def reset(self) -> None:
        self.offset = timedelta(0)


clock = Clock()
