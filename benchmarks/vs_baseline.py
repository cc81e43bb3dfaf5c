"""grocer's default pipeline against the plain single-model script, side by side, in one run.

    .venv/bin/python benchmarks/vs_baseline.py                      # the embedded sample
    .venv/bin/python benchmarks/vs_baseline.py --data DIR --test-labels CSV [--groups CSV] \
        [-S data.group_col=null -S 'pairs.list=[]' ...] [--variant 'NAME:train.epochs=15;aug.crop_scale=1' ...]

On a data folder with known test labels (the sample's truth by default), in one run:

1. the plain baseline (benchmarks/plain_baseline.py: one timm resnet10t, 64 px, 15 epochs,
   flips, no folds/TTA/ensemble) trains on the folder and writes its submission;
2. grocer's default `dvc repro` runs in a temporary copy of this repository (tracked files,
   params.yaml as it is plus the -S overrides, which may only touch data.* and pairs.list
   so that the defaults are what is measured), with the folder copied to data/raw.

It prints both test accuracies and macro-F1, the difference, both wall times, grocer's
ensemble lift (submitted step's OOF minus the best single model's), every zoo member's OOF
accuracy and blend weight, the submitted step's OOF-test gap, and the start-up share:
the seconds each stage process spent before its first line of work (interpreter, imports,
params; logged by the CLI, see GROCER_STARTUP_LOG in grocer.cli), summed, over the
repro's wall time. When the test labels carry a group column and a groups table marks
test-only groups (the sample's truth does), accuracy on seen and unseen groups too.
Each --variant then runs `dvc exp run -S ...` from the defaults in the same project, so
alternatives (a frontier, or the previous default) are scored in the same run; the stages
a variant does not change come from DVC's run-cache, so its wall time counts only the
stages it re-ran. The test labels are only reported: nothing is tuned on them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from grocer.stages.submit import STEP_NAMES

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def scores(truth: pd.DataFrame, submission: Path, test_only: set[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of a submission against the truth (image_id, label[, group])."""
    pred = pd.read_csv(submission, dtype=str).set_index("image_id")["label"]
    merged = truth.assign(pred=pred.reindex(truth["image_id"]).to_numpy())
    ok = (merged["label"] == merged["pred"]).to_numpy()
    f1s = []
    for c in sorted(set(merged["label"]) | set(merged["pred"].dropna())):
        tp = int(((merged["label"] == c) & (merged["pred"] == c)).sum())
        denom = int((merged["label"] == c).sum() + (merged["pred"] == c).sum())
        f1s.append(2 * tp / denom if denom else 0.0)
    out = {"acc": float(ok.mean()), "f1": float(np.mean(f1s))}
    if test_only and "group" in merged.columns:
        unseen = merged["group"].astype(str).isin(test_only).to_numpy()
        out.update(seen_acc=float(ok[~unseen].mean()), unseen_acc=float(ok[unseen].mean()), n_unseen=int(unseen.sum()))
    return out


def copy_project(target: Path, data: Path | None, overrides: list[str]) -> None:
    """This repository's tracked files at `target`, the data in data/raw, committed to a fresh git repo."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    for name in listed:
        if name == "dvc.lock" or not (REPO / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    params = yaml.safe_load((target / "params.yaml").read_text())
    if data is not None:
        shutil.copytree(data, target / "data/raw")
        params["data"]["dir"] = "data/raw"
    for override in overrides:
        key, value = override.split("=", 1)
        if not key.startswith(("data.", "pairs.list")):
            raise SystemExit(f"-S {override}: only data.* and pairs.list may change (the defaults are measured)")
        section, _, name = key.partition(".")
        params[section][name] = yaml.safe_load(value)
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "bench"]):
        subprocess.run(cmd, cwd=target, check=True, env=env)


def timed(cmd: list[str], cwd: Path, env: dict, log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {result.returncode}); see {log}")
    return time.perf_counter() - started


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'name:key=value;key=value' -> (name, ['key=value', ...]) for `dvc exp run -S`."""
    name, sep, assignments = text.partition(":")
    if not sep or not name or not assignments:
        raise SystemExit(f"--variant {text!r}: expected NAME:key=value;key=value")
    return name, [a for a in assignments.split(";") if a]


def grocer_result(project: Path, truth: pd.DataFrame, test_only: set[str]) -> dict:
    """The finished workspace's test scores and OOF figures."""
    final = json.loads((project / "metrics/final.json").read_text())
    blend = json.loads((project / "metrics/blend.json").read_text())
    steps = {step: final[step] for step in STEP_NAMES if step in final}
    members = {k[len("model_"):]: v for k, v in blend.items() if k.startswith("model_")}
    return {"test": scores(truth, project / "data/submission/submission.csv", test_only), "final": final,
            "steps": steps, "members": members, "submitted": final["submitted"]}


def row(name: str, s: dict, wall: float) -> str:
    groups_part = f"  seen {s['seen_acc']:.3f}  unseen {s['unseen_acc']:.3f} (n={s['n_unseen']})" if "unseen_acc" in s else ""
    return f"{name:<10} test acc {s['acc']:.3f}  macro-F1 {s['f1']:.3f}{groups_part}  wall {wall:.0f}s"


def report(name: str, result: dict, base: dict, wall: float) -> None:
    test, final = result["test"], result["final"]
    print(row(name, test, wall))
    print(f"  vs baseline: {100 * (test['acc'] - base['acc']):+.1f} points accuracy, "
          f"{100 * (test['f1'] - base['f1']):+.1f} macro-F1")
    print(f"  submitted step: {result['submitted']}, OOF acc {final['oof_acc']:.3f} "
          f"(test - OOF: {100 * (test['acc'] - final['oof_acc']):+.1f} points); ensemble lift: submitted OOF - "
          f"best single OOF = {100 * (final['oof_acc'] - final['best_single']['oof_acc']):+.1f} points")
    best_member = max(v["oof_acc"] for v in result["members"].values())
    for member, scores_ in result["members"].items():
        print(f"  member {member:<10} OOF acc {scores_['oof_acc']:.3f}  ({scores_['oof_acc'] / best_member:.3f} x best)"
              f"  blend weight {scores_['weight']:.2f}")
    for step, step_scores in result["steps"].items():
        mark = "  <- submitted" if step == result["submitted"] else ""
        print(f"  step {step:<12} OOF acc {step_scores['oof_acc']:.3f}  macro-F1 {step_scores['oof_f1']:.3f}{mark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="competition folder (default: the embedded sample)")
    ap.add_argument("--test-labels", type=Path, default=None,
                    help="image_id,label[,group] of the test images (default: the sample's truth)")
    ap.add_argument("--groups", type=Path, default=None, help="group,test_only table of the groups (optional)")
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="data.* or pairs.list override")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:k=v;k=v",
                    help="also run `dvc exp run -S k=v ...` from the defaults in the same project (repeatable)")
    ap.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temp dir)")
    args = ap.parse_args()
    if (args.data is None) != (args.test_labels is None):
        raise SystemExit("--data and --test-labels go together (neither: the embedded sample)")
    variants = [parse_variant(v) for v in args.variant]

    work = args.keep or Path(tempfile.mkdtemp(prefix="grocer-vs-baseline-"))
    work.mkdir(parents=True, exist_ok=True)
    project = work / "project"
    copy_project(project, args.data, args.overrides)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CI": "true",
           "GROCER_STARTUP_LOG": str(work / "startup.tsv")}
    env["PYTHONPATH"] = str(project / "src")  # the copy runs its own code, not the installed checkout's
    repro_wall = timed([str(BIN / "dvc"), "repro"], project, env, work / "repro.log")
    # the sample is generated by the repro: the baseline then trains on exactly those files
    data = args.data or project / "data/sample"
    test_labels = args.test_labels or project / "data/sample_truth/test_labels.csv"
    groups = args.groups or (project / "data/sample_truth/groups.csv" if args.data is None else None)
    base_wall = timed([str(BIN / "python"), str(REPO / "benchmarks/plain_baseline.py"), str(data),
                       str(work / "baseline.csv")], REPO, env, work / "baseline.log")

    test_only = set()
    if groups is not None:
        table = pd.read_csv(groups, dtype=str)
        test_only = set(table.loc[table["test_only"] == "True", "group"])
    truth = pd.read_csv(test_labels, dtype=str)
    base = scores(truth, work / "baseline.csv", test_only)
    default = grocer_result(project, truth, test_only)
    startup = pd.read_csv(work / "startup.tsv", sep="\t", names=["command", "seconds"])

    print(f"data: {data}  ({len(truth)} test images; run in {work})")
    print(row("baseline", base, base_wall))
    report("grocer", default, base, repro_wall)
    share = startup["seconds"].sum() / repro_wall
    print(f"start-up: {startup['seconds'].sum():.0f}s over {len(startup)} stage processes = {100 * share:.0f}% "
          f"of the repro's {repro_wall:.0f}s (per command, mean s: "
          + ", ".join(f"{c} {s:.1f}" for c, s in startup.groupby("command")["seconds"].mean().items()) + ")")
    for name, assignments in variants:
        # each variant starts from the committed defaults; the stages it does not change come from the run-cache
        subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=project, check=True)
        cmd = [str(BIN / "dvc"), "exp", "run", "-n", name] + [a for kv in assignments for a in ("-S", kv)]
        wall = timed(cmd, project, env, work / f"variant-{name}.log")
        print(f"variant {name}: {' '.join(assignments)}  (wall counts only the stages it re-ran)")
        report(name, grocer_result(project, truth, test_only), base, wall)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
