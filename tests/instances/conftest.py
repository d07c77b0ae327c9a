"""Two app instances on one PostgreSQL: separate uvicorn processes on separate ports.

Both serve the session's test database with the same secret key, and with limits low
enough to reach in a test (CTCP_LOGIN_MAX_FAILURES, CTCP_RATE_LIMIT_PER_CLIENT), so what
one instance changes or counts can be checked from the other. They are started once per
module, side by side, and stopped at its end.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ctcp.core.config import Settings
from tests.servers import AppServer, free_ports

LOGIN_MAX_FAILURES = 3
RATE_LIMIT_PER_CLIENT = 20


@dataclass
class Instances:
    a: str  # base URL of instance A
    b: str  # base URL of instance B
    pids: tuple[int, int]  # their process ids (one worker each)


@pytest.fixture(scope="module")
def instances(settings: Settings) -> Iterator[Instances]:
    """Instances A and B, ready, on this session's PostgreSQL database."""
    environment = {
        "CTCP_LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
        "CTCP_RATE_LIMIT_PER_CLIENT": str(RATE_LIMIT_PER_CLIENT),
        # One long window: a test's requests never straddle two.
        "CTCP_RATE_LIMIT_WINDOW_SECONDS": "3600",
        "CTCP_DB_POOL_SIZE": "5",
    }
    servers = [
        AppServer(settings.database_url, settings, log_name=f"instance-{name}", **environment)
        for name in ("a", "b")
    ]
    try:
        for server, port in zip(servers, free_ports(2), strict=True):
            server.launch(port)  # side by side, then both awaited
        a, b = (server.wait_ready() for server in servers)
        yield Instances(a, b, (servers[0].pid, servers[1].pid))
    finally:
        for server in servers:
            server.stop()
