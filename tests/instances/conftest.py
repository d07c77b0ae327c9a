"""Two app instances on one PostgreSQL: separate uvicorn processes on separate ports.

Both serve the session's test database with the same secret key, and with limits low
enough to reach in a test (CTCP_LOGIN_MAX_FAILURES, CTCP_RATE_LIMIT_PER_CLIENT), so what
one instance changes or counts can be checked from the other. They are started once per
module, side by side, and stopped at its end.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from ctcp.core.config import Settings

LOGIN_MAX_FAILURES = 3
RATE_LIMIT_PER_CLIENT = 20


@dataclass
class Instances:
    a: str  # base URL of instance A
    b: str  # base URL of instance B
    pids: tuple[int, int]  # their process ids (one worker each)


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: every probe socket is held open until all are chosen."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _start(settings: Settings, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "CTCP_ENVIRONMENT": "test",
        "CTCP_DATABASE_URL": settings.database_url,
        "CTCP_SECRET_KEY": settings.secret().decode(),
        "CTCP_VAR_DIR": str(settings.var_dir),
        "CTCP_LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
        "CTCP_RATE_LIMIT_PER_CLIENT": str(RATE_LIMIT_PER_CLIENT),
        # One long window: a test's requests never straddle two.
        "CTCP_RATE_LIMIT_WINDOW_SECONDS": "3600",
        # Every test calls from 127.0.0.1: only the per-client limit is under test.
        "CTCP_RATE_LIMIT_PER_ADDRESS": "1000000",
        "CTCP_DB_POOL_SIZE": "5",
    }
    environment.pop("CTCP_SMTP_HOST", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "ctcp.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def instances(settings: Settings) -> Iterator[Instances]:
    """Instances A and B, ready, on this session's PostgreSQL database."""
    ports = _free_ports(2)
    logs = [(settings.var_dir / f"instance-{port}.log").open("wb") for port in ports]
    servers = [_start(settings, port, log) for port, log in zip(ports, logs, strict=True)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 30
        waiting = set(range(len(servers)))
        while waiting:
            for index in sorted(waiting):
                try:
                    if httpx.get(f"{bases[index]}/readyz", timeout=1).status_code == 200:
                        waiting.discard(index)
                        continue
                except httpx.HTTPError:
                    pass
                if servers[index].poll() is not None or time.monotonic() > deadline:
                    logs[index].flush()
                    output = Path(logs[index].name).read_text()
                    pytest.fail(f"instance {bases[index]} did not start:\n{output[-3000:]}")
            time.sleep(0.1)
        yield Instances(bases[0], bases[1], (servers[0].pid, servers[1].pid))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        for log in logs:
            log.close()
