"""`grocer <command>`: the one entry point. Thin: parse args, load params, call a stage.

Every `cmd:` in dvc.yaml is a `grocer` command; each stage module has one
`run(params, **options)`. Modules are imported only when their command runs, so
`grocer sample` does not pay for importing torch. A GrocerError (bad params, bad
data) becomes one line on stderr and exit code 1; Ctrl+C or SIGTERM the line
`interrupted` and exit code 130 or 143 (grocer.interrupt).

With GROCER_STARTUP_LOG set to a file path, each command appends one line to it,
`<command>\t<seconds from process start to the stage's first line of work>`
(interpreter, imports and params, Linux only): benchmarks/vs_baseline.py sums them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass, field

from grocer.errors import GrocerError
from grocer.interrupt import Interrupted, on_signals_raise


@dataclass(frozen=True)
class Option:
    flag: str
    type: type
    help: str
    required: bool = True
    default: object = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Command:
    module: str
    help: str
    options: tuple[Option, ...] = field(default_factory=tuple)


MODEL = Option("--model", str, "zoo key of the model (one of run.models)")
FOLD = Option("--fold", int, "fold index (one of run.folds)")
PAIR = Option("--pair", str, "an entry of pairs.list: a confusable class pair 'a-b' or a slot 'topN'")

# The DVC stage that applies review journals is `apply-review`; `review` is the web page.
COMMANDS: dict[str, Command] = {
    "sample": Command("grocer.stages.sample", "write the embedded demo dataset to data/sample"),
    "ingest": Command("grocer.stages.ingest", "validate the data contract and measure every image"),
    "clean": Command("grocer.stages.clean", "rule-based drop/quarantine decisions, both variants"),
    "apply-review": Command("grocer.stages.review", "replay review journals onto the chosen clean variant"),
    "folds": Command("grocer.stages.folds", "seeded cross-validation folds"),
    "cache": Command("grocer.stages.cache", "decode and resize every image once into uint8 arrays"),
    "train": Command("grocer.stages.train", "train one zoo model on one fold (matrix item train@<model>-<fold>)",
                     (MODEL, FOLD)),
    "infer": Command("grocer.stages.infer", "TTA predictions of every trained fold of one model (run.folds) on "
                     "its OOF rows and the test set", (MODEL,)),
    "choose-pairs": Command("grocer.stages.choose_pairs", "the most confused pairs behind pairs.list's topN slots"),
    "pair": Command("grocer.stages.pair", "train and apply one binary pair expert on one fold", (PAIR, FOLD)),
    "blend": Command("grocer.stages.blend", "OOF-fitted convex blend of the models, with class-bias calibration"),
    "stack": Command("grocer.stages.stack", "meta-learner on the models' OOF predictions, scored fold-honestly"),
    "override": Command("grocer.stages.override", "gated pair-expert override on top of the stack"),
    "submit": Command("grocer.stages.submit", "write submission.csv like sample_submission.csv and the evolution table"),
    "audit": Command("grocer.stages.audit", "private-risk audit of the final OOF: bootstrap, holdout, per group"),
    "report": Command("grocer.stages.report", "plot files for `dvc plots show` and PNGs of the confusion and evolution"),
    "summary": Command("grocer.summary", "print the last run's evolution table (metrics/final.json)"),
    "review": Command("grocer.review.server", "local web page: class-by-class swipe review with model hints", (
        Option("--port", int, "port to listen on (0: any free port)", required=False, default=8765),
        Option("--session", str, "journal name, data/review/sessions/<name>.jsonl (default: your user name)",
               required=False),
        Option("--host", str, "address to bind; keep 127.0.0.1 unless you know why", required=False,
               default="127.0.0.1"),
        Option("--order", str, "image order within a class (likely_errors needs OOF predictions)",
               required=False, default="likely_errors", choices=("likely_errors", "file")),
        Option("--mode", str, "single: one image at a time; grid: a page of thumbnails of one class",
               required=False, default="single", choices=("single", "grid")),
        Option("--page-size", int, "grid mode: thumbnails per page (0: as many as fit the window)",
               required=False, default=0),
    )),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grocer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in COMMANDS.items():
        stage_parser = sub.add_parser(name, help=command.help)
        for option in command.options:
            stage_parser.add_argument(
                option.flag, type=option.type, help=option.help, required=option.required, default=option.default,
                choices=option.choices,
            )
    return parser


def _log_startup(name: str) -> None:
    log = os.environ.get("GROCER_STARTUP_LOG")
    if not log or not os.path.exists("/proc/self/stat"):
        return
    # field 22 of /proc/self/stat: the process's start, in clock ticks after boot
    started = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    with open(log, "a") as out:
        out.write(f"{name}\t{time.clock_gettime(time.CLOCK_BOOTTIME) - started:.3f}\n")


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: with another process on the cores (a
    # second experiment, a DataLoader worker, anything) torch's spinning threads stalled
    # training 4-6x on 2 cores (README: "Measured"). Read once when torch loads its OpenMP
    # runtime, so it is set before any stage module is imported; the user's setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    on_signals_raise()
    args = vars(_parser().parse_args(argv))
    name = args.pop("command")
    try:
        from grocer import params as params_module  # here, so that a signal during its imports is handled

        params = params_module.load()
        stage = importlib.import_module(COMMANDS[name].module)
        _log_startup(name)
        stage.run(params, **args)
    except GrocerError as exc:
        print(f"grocer {name}: error: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print("interrupted", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
