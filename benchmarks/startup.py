"""What a newcomer waits for: a `ctcp` command's start, and the run command's set-up.

    .venv/bin/python benchmarks/startup.py [--rounds 5] [--setup-rounds 2]

Prints, per round (interleaved, medians at the end):
- `python -c pass` (the baseline: the interpreter alone, measured in the same run),
- `ctcp --help` and `ctcp db --help` (what the CLI imports before doing anything),
- `python -c "import ctcp.app"` (what a command that needs the application imports),
and, on fresh SQLite databases, `ctcp setup --admin-email ... --demo` (what
scripts/run-portal runs before serving: migrations, reference data, policy, admin, demo).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv" / "bin"


def _seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--setup-rounds", type=int, default=2)
    args = parser.parse_args()
    python = str(VENV / "python")
    commands = {
        "python -c pass (baseline)": [python, "-c", "pass"],
        "ctcp --help": [str(VENV / "ctcp"), "--help"],
        "ctcp db --help": [str(VENV / "ctcp"), "db", "--help"],
        "import ctcp.app": [python, "-c", "import ctcp.app"],
    }
    figures: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(1, args.rounds + 1):
        for name, command in commands.items():
            figures[name].append(_seconds(command))
        print(
            f"round {round_number}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in figures.items())
        )
    setups: list[float] = []
    for _ in range(args.setup_rounds):
        with tempfile.TemporaryDirectory() as directory:
            env = os.environ | {
                "CTCP_DATABASE_URL": f"sqlite:///{directory}/ctcp.db",
                "CTCP_ADMIN_PASSWORD": "Lantern-harbour-morning-2026",
            }
            setups.append(
                _seconds(
                    [str(VENV / "ctcp"), "setup", "--admin-email", "admin@ctcp.example", "--demo"],
                    env,
                )
            )
        print(f"ctcp setup --demo on a fresh database: {setups[-1]:.2f} s")
    print("\nmedians:")
    for name, values in figures.items():
        print(f"  {name:32s} {statistics.median(values):.2f} s")
    if setups:
        print(f"  {'ctcp setup --demo':32s} {statistics.median(setups):.2f} s")
    baseline = statistics.median(figures["python -c pass (baseline)"])
    help_time = statistics.median(figures["ctcp --help"])
    print(f"\nctcp --help costs {help_time - baseline:.2f} s over the bare interpreter")
    sys.exit(0)


if __name__ == "__main__":
    main()
