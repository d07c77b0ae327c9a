"""The app served by uvicorn in a process of its own, for tests that need a real server
(browser tests, two instances, faults): free ports, start, readiness, stop, SIGKILL."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ctcp.core.config import Settings


def free_ports(count: int = 1) -> list[int]:
    """Distinct free ports: every probe socket is held open until all are chosen."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    return free_ports(1)[0]


class AppServer:
    """`uvicorn ctcp.app:create_app` with one worker (so the process that serves is the
    one a test kills), on `database_url`, with the session's key and `env` on top."""

    def __init__(
        self, database_url: str, settings: Settings, *, log_name: str = "server", **env: str
    ) -> None:
        self.database_url = database_url
        self.settings = settings
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path: Path = settings.var_dir / f"{log_name}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def launch(self, port: int | None = None) -> None:
        """Start the process (on `port`, else a new free one); `wait_ready` waits for it."""
        self.port = port or free_port()
        environment = {
            **os.environ,
            "CTCP_ENVIRONMENT": "test",
            "CTCP_DATABASE_URL": self.database_url,
            "CTCP_SECRET_KEY": self.settings.secret().decode(),
            "CTCP_VAR_DIR": str(self.settings.var_dir),
            # Tests call from 127.0.0.1 in quick succession: limits only where under test.
            "CTCP_RATE_LIMIT_PER_CLIENT": "1000000",
            "CTCP_RATE_LIMIT_PER_ADDRESS": "1000000",
            **self.env,
        }
        environment.pop("CTCP_SMTP_HOST", None)
        with self.log_path.open("ab") as log:
            log.write(f"\n==> starting on port {self.port}\n".encode())
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "ctcp.app:create_app", "--factory"),
                    *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
                    "--no-access-log",
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, *, timeout: float = 30) -> str:
        """The base URL once `/readyz` answers 200; the test fails with the log if never."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self.base
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server {self.base} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def start(self, *, timeout: float = 30) -> str:
        """Start a new process on a new port; its base URL once it is ready."""
        self.launch()
        return self.wait_ready(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no rollback, no flush — whatever was in flight is cut."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
