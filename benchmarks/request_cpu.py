"""CPU per request in one process: a sign-in, a publication read, a publication list.

    .venv/bin/python benchmarks/request_cpu.py [--requests 2000]
    OTHER/.venv/bin/python benchmarks/request_cpu.py --root OTHER   # another checkout

No server, no load generator, no network: the app is called through httpx's ASGI
transport on a fresh SQLite database with the demo data, and `time.process_time()`
counts this process's CPU only, so the figure moves far less with the shared machine's
load than req/s do. Compare two checkouts (say, main before and after a change) by
running each with its own virtual environment, alternately, a few times.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "Lantern-harbour-morning-2026"


def prepare(root: Path, var_dir: Path) -> dict[str, str]:
    """A SQLite database with the reference and demo data, made by `ctcp` of `root`."""
    env = {
        **os.environ,
        "CTCP_DATABASE_URL": f"sqlite:///{var_dir}/bench.db",
        "CTCP_VAR_DIR": str(var_dir),
        "CTCP_ADMIN_PASSWORD": PASSWORD,
        "CTCP_SECRET_KEY": "bench-" + "k" * 40,
    }
    ctcp = str(root / ".venv" / "bin" / "ctcp")
    for args in (
        ["db", "upgrade"],
        ["load-reference-data"],
        ["policy", "load"],
        ["create-admin", "--email", "admin@ctcp.example", "--org", "CTED"],
        ["demo"],
    ):
        subprocess.run([ctcp, *args], env=env, check=True, capture_output=True, cwd=root)
    return env


async def measure(requests: int) -> dict[str, float]:
    import httpx

    from ctcp.app import create_app
    from ctcp.core.config import Settings

    settings = Settings(rate_limit_per_client=10**9, rate_limit_per_address=10**9)
    app = create_app(settings)
    figures: dict[str, float] = {}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        body = {"email": "focal.unodc@demo.ctcp.example", "password": PASSWORD}
        started = time.process_time()
        for _ in range(20):
            signed_in = await client.post("/api/v1/session", json=body)
            assert signed_in.status_code == 200, signed_in.text
        figures["sign-in ms"] = (time.process_time() - started) / 20 * 1e3
        publication = (await client.get("/api/v1/publications")).json()["items"][0]["id"]
        for path, count in (
            (f"/api/v1/publications/{publication}", requests),
            ("/api/v1/publications", requests // 4),
        ):
            for _ in range(count // 10):  # warm caches and statements
                await client.get(path)
            started = time.process_time()
            for _ in range(count):
                assert (await client.get(path)).status_code == 200
            name = "read µs" if path != "/api/v1/publications" else "list µs"
            figures[name] = (time.process_time() - started) / count * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--requests", type=int, default=2000)
    options = parser.parse_args()
    os.environ.update(prepare(options.root, Path(tempfile.mkdtemp(prefix="ctcp-cpu-"))))
    figures = asyncio.run(measure(options.requests))
    print(
        f"{options.root}: CPU per sign-in {figures['sign-in ms']:.1f} ms, "
        f"per publication read {figures['read µs']:.0f} µs, per list {figures['list µs']:.0f} µs"
    )


if __name__ == "__main__":
    sys.exit(main())
