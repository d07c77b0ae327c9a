"""The load benchmark's smoke run, so it cannot rot: small data, a few seconds, 1 worker.

Asserts only what a user of the benchmark relies on (every request class answered, no
error, the figures there, the audit chain intact afterwards), never a timing.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {
    "oauth.token",
    "pub.read",
    "pub.list",
    "pub.read.baseline",
    "pub.list.baseline",
    "report.read",
    "report.list",
    "report.read.baseline",
    "report.list.baseline",
    "report.create",
    "report.update",
    "consent.record",
    "consent.narrow",
    "consent.withdraw",
}
FIGURES = {"requests", "errors", "rps", "p50_ms", "p99_ms", "mean_ms", "statuses"}


def _load_benchmark() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    path = ROOT / "benchmarks" / "load.py"
    spec = importlib.util.spec_from_file_location("ctcp_load_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mixed_traffic_smoke(fresh_database_url: str, capsys: Any) -> None:
    load = _load_benchmark()
    options = load.parser().parse_args(
        [
            "--database-url",
            fresh_database_url,
            "--build",
            "--dataset",
            "small",
            "--workers",
            "1",
            "--clients",
            "8",
            "--duration",
            "5",
            "--warmup",
            "1",
            "--phases",
            "mixed",
        ]
    )
    report = load.run(options)

    classes = report["phases"]["mixed"]["classes"]
    assert set(classes) >= CLASSES, f"classes without answers: {CLASSES - set(classes)}"
    for name, figures in classes.items():
        assert set(figures) >= FIGURES, name
        assert figures["requests"] > 0, name
        assert figures["errors"] == 0, (name, figures["samples"])
        assert all(status in ("200", "201") for status in figures["statuses"]), (name, figures)
    assert report["summary"]["mixed_ratio_pub.read"] > 0
    assert report["memory"] and all(m["rss_mb"] > 0 for m in report["memory"].values())
    assert report["audit"]["valid"] is True
    assert report["audit"]["checked"] > 0

    printed = capsys.readouterr().out
    assert "pub.read.baseline" in printed
    assert "audit chain: intact" in printed
