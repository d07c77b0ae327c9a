"""Fault tests: a real uvicorn process, killed or starved of its database on purpose.

`AppServer` (`tests/servers.py`) runs the app in a separate process (one worker, so the
process that serves is the one that dies on SIGKILL), on a database of the test's own;
`PrivateCluster` is a throw-away PostgreSQL cluster on a free port, which a test may stop
and start at will — never the shared cluster the rest of the suite uses.
"""

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest

from ctcp.core.config import Settings
from tests.factories import PASSWORD, TOTP_SECRETS
from tests.servers import AppServer, free_port


@pytest.fixture
def start_server(settings: Settings) -> Iterator[Any]:
    """`start_server(url, **env)`: an `AppServer` started on `url`, stopped after the test."""
    servers: list[AppServer] = []

    def start(database_url: str, **env: str) -> AppServer:
        server = AppServer(database_url, settings, log_name="fault-server", **env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def live_client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30.0))


async def live_sign_in(client: httpx.AsyncClient, email: str) -> None:
    """Sign in against a server process (real time: the test clock does not reach it)."""
    payload = {"email": email, "password": PASSWORD}
    if email.lower() in TOTP_SECRETS:
        payload["otp"] = pyotp.TOTP(TOTP_SECRETS[email.lower()]).now()
    response = await client.post("/api/v1/session", json=payload)
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class PrivateCluster:
    """A throw-away PostgreSQL cluster: trust auth, fsync off, in a temporary folder."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="ctcp-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # initdb refuses to run as root: run the cluster as the `postgres` OS user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, user="postgres")
        self.root.chmod(0o755)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> None:
        async def create() -> None:
            connection = await asyncpg.connect(self.url, timeout=5)
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        asyncio.run(create())

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop()
        if self.running():
            # pg_ctl could not stop it: never delete the files of a live server.
            with contextlib.suppress(OSError, ValueError):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this test's own on a free port, removed afterwards."""
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        message = "initdb/pg_ctl not found: install the PostgreSQL server package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = PrivateCluster(initdb, pg_ctl)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
