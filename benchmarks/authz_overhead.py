"""What guard + audit cost: a guarded, audited read against the same query unguarded.

This machine kind is shared and noisy: (a) and (b) runs are interleaved and the median
of each is compared; the per-round ratios show the spread.

Starts the app (uvicorn, N workers) on a fresh PostgreSQL database holding 193 States,
the Compact entities and 20,000 users, then drives both endpoints with the same load
(32 concurrent keep-alive clients from a separate process: wrk, or benchmarks/loadgen.py)
and prints requests/s, p50 and p99 of each, `ratio: X.XX`, and Casbin's enforce latency.

    .venv/bin/python benchmarks/authz_overhead.py [--database-url postgresql://...]
        [--users 20000] [--workers 2] [--concurrency 32] [--duration 10] [--keep]
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from population import pg_admin, populate

from ctcp.audit import service as audit
from ctcp.authz import policy
from ctcp.core.config import Settings
from ctcp.core.db import Database

WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("CTCP_BENCH_IDS")) do paths[#paths + 1] = line end
local prefix = os.getenv("CTCP_BENCH_PREFIX")
wrk.headers["Cookie"] = os.getenv("CTCP_BENCH_COOKIE")
request = function()
  return wrk.format("GET", prefix .. paths[math.random(#paths)])
end
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(
    prefix: str, ids_file: str, cookie: str, port: int, concurrency: int, duration: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {
        **os.environ,
        "CTCP_BENCH_IDS": ids_file,
        "CTCP_BENCH_PREFIX": prefix,
        "CTCP_BENCH_COOKIE": cookie,
    }
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))
    if "99" not in latency:
        raise RuntimeError(f"wrk gave no latency figures:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: .*", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _to_ms(latency["50"]),
        "p99_ms": _to_ms(latency["99"]),
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": errors.group(0) if errors else "",
    }  # type: ignore[dict-item]


def _loadgen(
    prefix: str, ids_file: str, cookie: str, port: int, concurrency: int, duration: int
) -> dict[str, float]:
    output = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "loadgen.py"),
            f"http://127.0.0.1:{port}{prefix}{{id}}",
            ids_file,
            "--cookie",
            cookie,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def _cpu_seconds(pattern: str) -> float:
    """User + system CPU of every process whose command line contains `pattern`."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if pattern not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _measured(drive: Any, *args: Any) -> dict[str, Any]:
    """A load run, with the CPU the app workers and PostgreSQL spent per request."""
    app_before, db_before = _cpu_seconds("multiprocessing"), _cpu_seconds("postgres:")
    result: dict[str, Any] = drive(*args)
    requests = result["rps"] * args[-1]
    result["app_cpu_us"] = (_cpu_seconds("multiprocessing") - app_before) / requests * 1e6
    result["db_cpu_us"] = (_cpu_seconds("postgres:") - db_before) / requests * 1e6
    return result


def measure_enforce() -> tuple[float, float]:
    """Casbin's enforce, raw and through the per-version memo, in microseconds."""
    engine = policy.PolicyEngine(policy.build_enforcer(policy.read_policy_file()), 0)
    rounds = 5000
    started = time.perf_counter()
    for _ in range(rounds):
        engine.enforcer.enforce("platform_admin", "CTED", "user", "manage", "all")
    raw = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        engine.scopes(frozenset({"platform_admin"}), "CTED", "user", "manage")
    memo = (time.perf_counter() - started) / rounds * 1e6
    return raw, memo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CTCP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved (a), (b) pairs; the median of each is reported",
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also measure guard only and audit only"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the guarded run's workers with py-spy (collapsed stacks)",
    )
    args = parser.parse_args()

    name = f"ctcp_bench_{secrets.token_hex(3)}"
    asyncio.run(pg_admin(args.database_url, f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    var_dir = tempfile.mkdtemp(prefix="ctcp-bench-")
    secret_key = secrets.token_urlsafe(48)
    settings = Settings(database_url=url, var_dir=Path(var_dir), secret_key=secret_key)
    server = None
    try:
        started = time.monotonic()
        population = asyncio.run(populate(url, users=args.users, settings=settings))
        print(f"population: {args.users} users in {time.monotonic() - started:.1f} s")
        ids_file = os.path.join(var_dir, "ids.txt")
        Path(ids_file).write_text("\n".join(str(i) for i in population.user_ids[:5000]))
        port = _free_port()
        env = {
            **os.environ,
            "CTCP_DATABASE_URL": url,
            "CTCP_SECRET_KEY": secret_key,
            "CTCP_VAR_DIR": var_dir,
            "PYTHONPATH": str(ROOT / "benchmarks"),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench_app:create",
                "--factory",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        cookie = f"ctcp_session={population.cookies['platform_admin']}"
        drive = _wrk if shutil.which("wrk") else _loadgen
        print(
            f"load: {drive.__name__.strip('_')}, {args.concurrency} connections, "
            f"{args.duration} s per run, {args.workers} workers, PostgreSQL"
        )
        drive("/api/v1/users/", ids_file, cookie, port, args.concurrency, 3)  # warm-up
        drive("/bench/users/", ids_file, cookie, port, args.concurrency, 3)
        results: dict[str, list[dict[str, Any]]] = {"guarded": [], "baseline": []}
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [
                    shutil.which("py-spy") or "py-spy",
                    "record",
                    "--format",
                    "raw",
                    "--subprocesses",
                    "--duration",
                    str(args.duration),
                    "--output",
                    args.profile,
                    "--pid",
                    str(server.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for _ in range(args.rounds):
            results["guarded"].append(
                _measured(
                    drive, "/api/v1/users/", ids_file, cookie, port, args.concurrency, args.duration
                )
            )
            if profiler is not None:
                profiler.wait()
                profiler = None
            results["baseline"].append(
                _measured(
                    drive, "/bench/users/", ids_file, cookie, port, args.concurrency, args.duration
                )
            )
        if args.breakdown:
            for label, path in (
                ("guard only", "/bench/guard/users/"),
                ("audit only", "/bench/audit/users/"),
            ):
                r = _measured(drive, path, ids_file, cookie, port, args.concurrency, args.duration)
                print(
                    f"breakdown, {label}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms; "
                    f"CPU per request: app {r['app_cpu_us']:.0f} us, "
                    f"PostgreSQL {r['db_cpu_us']:.0f} us"
                )
        ratios = [
            a["rps"] / b["rps"]
            for a, b in zip(results["guarded"], results["baseline"], strict=True)
        ]
        print("per-round ratios: " + ", ".join(f"{ratio:.2f}" for ratio in ratios))
        median = {
            kind: sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
            for kind, runs in results.items()
        }
        for kind, label in (
            ("guarded", "(a) guarded + audited GET /api/v1/users/{id}"),
            ("baseline", "(b) same query, no guard, no audit"),
        ):
            r = median[kind]
            print(
                f"{label}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms, errors {int(r['errors'])}; CPU per request: "
                f"app {r['app_cpu_us']:.0f} us, PostgreSQL {r['db_cpu_us']:.0f} us"
            )
        print(f"ratio: {median['guarded']['rps'] / median['baseline']['rps']:.2f}")
        raw, memo = measure_enforce()
        print(
            f"enforce: {raw:.1f} us per Casbin enforce (FastEnforcer), "
            f"{memo:.2f} us per guard decision (memoised per policy version)"
        )

        async def verify() -> audit.VerifyResult:
            database = Database(url)
            async with database.sessionmaker() as session:
                result = await audit.verify_chain(session)
            await database.dispose()
            return result

        chain = asyncio.run(verify())
        print(f"audit chain after the run: valid={chain.valid}, {chain.checked} events")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            asyncio.run(pg_admin(args.database_url, drop))
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
