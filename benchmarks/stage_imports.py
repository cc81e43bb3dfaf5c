"""Start-up cost of every `grocer` command: wall seconds to import its stage module, and the heavy packages it loads.

    .venv/bin/python benchmarks/stage_imports.py [--runs 3]

Each figure is the median over --runs fresh interpreters of `import <stage module>`
(what a stage process pays before its first line of work, params aside). A default
`dvc repro` starts one process per stage and per matrix item, so the sum over the run
is this table weighted by the item counts (benchmarks/vs_baseline.py measures that
sum inside a real run). The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from grocer.cli import COMMANDS

HEAVY = ("torch", "timm", "albumentations", "sklearn", "scipy", "pandas", "matplotlib", "PIL", "pyarrow")
PROBE = (
    "import importlib, json, sys, time; t = time.perf_counter(); importlib.import_module(sys.argv[1]); "
    "print(json.dumps([time.perf_counter() - t, [m for m in sys.argv[2:] if m in sys.modules]]))"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"{'command':<14}{'import s':>9}  heavy packages loaded")
    for name, command in COMMANDS.items():
        seconds, loaded = [], []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-c", PROBE, command.module, *HEAVY], check=True,
                                 capture_output=True, text=True).stdout
            elapsed, loaded = json.loads(out)
            seconds.append(elapsed)
        print(f"{name:<14}{statistics.median(seconds):>9.2f}  {', '.join(loaded)}")


if __name__ == "__main__":
    main()
