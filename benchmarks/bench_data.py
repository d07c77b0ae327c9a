"""What the data-set benchmarks (planning.py, contacts.py, changes.py) share: the bulk
data set built once into the database, and how they print figures."""

import statistics
import time

from ctcp.audit.service import AuditContext
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.passwords import PasswordHasher
from ctcp_demo import large
from ctcp_demo.content import DEMO_PASSWORD


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def build(url: str, scale: large.Scale, settings: Settings, phase: str | None = None) -> None:
    """The bulk data set of `scale`, unless the database holds one already; prints how
    long it took (and the build phase `phase`, the one the benchmark is about)."""
    database = Database(url)
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    try:
        started = time.perf_counter()
        result = await large.build(
            database, scale=scale, password=DEMO_PASSWORD, hasher=hasher, context=AuditContext()
        )
        if result is None:
            print("data set: already present")
            return
        took = f"data set {scale.name}: built in {time.perf_counter() - started:.0f} s"
        if phase is not None:
            took += f" ({phase} {dict(result.phases)[phase]:.1f} s)"
        print(took)
    finally:
        await database.dispose()
