"""A small HTTP/1.1 keep-alive load generator (used where `wrk` is not installed).

python benchmarks/loadgen.py URL_TEMPLATE IDS_FILE --cookie C --concurrency 32 --duration 10
prints one JSON line: {"requests", "errors", "seconds", "rps", "p50_ms", "p99_ms"}.
"""

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit


async def _client(
    host: str,
    port: int,
    paths: list[str],
    cookie: str,
    stop: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    try:
        while time.monotonic() < stop:
            path = rng.choice(paths)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
                "Connection: keep-alive\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


async def run(
    template: str, ids: list[str], cookie: str, concurrency: int, duration: float
) -> dict[str, float]:
    parts = urlsplit(template.replace("{id}", "ID"))
    paths = [parts.path.replace("ID", i) for i in ids]
    latencies: list[float] = []
    errors: list[int] = []
    started = time.monotonic()
    stop = started + duration
    await asyncio.gather(
        *[
            _client(
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                paths,
                cookie,
                stop,
                latencies,
                errors,
            )
            for _ in range(concurrency)
        ]
    )
    seconds = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("ids_file")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args()
    ids = [line.strip() for line in open(args.ids_file) if line.strip()]  # noqa: SIM115
    print(
        json.dumps(
            asyncio.run(run(args.template, ids, args.cookie, args.concurrency, args.duration))
        )
    )


if __name__ == "__main__":
    main()
