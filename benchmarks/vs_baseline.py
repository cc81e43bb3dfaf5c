"""grocer's default pipeline against the plain single-model script, side by side, in one run.

    .venv/bin/python benchmarks/vs_baseline.py                      # the embedded sample
    .venv/bin/python benchmarks/vs_baseline.py --data DIR --test-labels CSV [--groups CSV] \
        [-S data.group_col=null -S 'pairs.list=[]' ...]

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
The test labels are only reported: nothing is tuned on them.
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

from grocer.stages.submit import STEP_NAMES, submitted_step

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="competition folder (default: the embedded sample)")
    ap.add_argument("--test-labels", type=Path, default=None,
                    help="image_id,label[,group] of the test images (default: the sample's truth)")
    ap.add_argument("--groups", type=Path, default=None, help="group,test_only table of the groups (optional)")
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="data.* or pairs.list override")
    ap.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temp dir)")
    args = ap.parse_args()
    if (args.data is None) != (args.test_labels is None):
        raise SystemExit("--data and --test-labels go together (neither: the embedded sample)")

    work = args.keep or Path(tempfile.mkdtemp(prefix="grocer-vs-baseline-"))
    work.mkdir(parents=True, exist_ok=True)
    project = work / "project"
    copy_project(project, args.data, args.overrides)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CI": "true",
           "GROCER_STARTUP_LOG": str(work / "startup.tsv")}
    env.pop("PYTHONPATH", None)
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
    grocer = scores(truth, project / "data/submission/submission.csv", test_only)
    final = json.loads((project / "metrics/final.json").read_text())
    blend = json.loads((project / "metrics/blend.json").read_text())
    params = yaml.safe_load((project / "params.yaml").read_text())
    steps = {step: final[step] for step in STEP_NAMES if step in final}
    submitted = submitted_step(steps, params["submit"]["source"], params["override"]["base"])
    startup = pd.read_csv(work / "startup.tsv", sep="\t", names=["command", "seconds"])
    members = {k[len("model_"):]: v for k, v in blend.items() if k.startswith("model_")}
    best_member = max(v["oof_acc"] for v in members.values())

    def row(name: str, s: dict, wall: float) -> str:
        groups_part = (f"  seen {s['seen_acc']:.3f}  unseen {s['unseen_acc']:.3f} (n={s['n_unseen']})"
                       if "unseen_acc" in s else "")
        return f"{name:<10} test acc {s['acc']:.3f}  macro-F1 {s['f1']:.3f}{groups_part}  wall {wall:.0f}s"

    print(f"data: {data}  ({len(truth)} test images; run in {work})")
    print(row("baseline", base, base_wall))
    print(row("grocer", grocer, repro_wall))
    print(f"difference: {100 * (grocer['acc'] - base['acc']):+.1f} points accuracy, "
          f"{100 * (grocer['f1'] - base['f1']):+.1f} macro-F1")
    print(f"grocer submitted step: {submitted}, OOF acc {final['oof_acc']:.3f} "
          f"(test - OOF: {100 * (grocer['acc'] - final['oof_acc']):+.1f} points)")
    print(f"ensemble lift: submitted OOF - best single OOF = {100 * (final['oof_acc'] - final['best_single']['oof_acc']):+.1f} points")
    for name, member in members.items():
        print(f"  member {name:<10} OOF acc {member['oof_acc']:.3f}  ({member['oof_acc'] / best_member:.3f} x best)"
              f"  blend weight {member['weight']:.2f}")
    for step, step_scores in steps.items():
        mark = "  <- submitted" if step == submitted else ""
        print(f"  step {step:<12} OOF acc {step_scores['oof_acc']:.3f}  macro-F1 {step_scores['oof_f1']:.3f}{mark}")
    share = startup["seconds"].sum() / repro_wall
    print(f"start-up: {startup['seconds'].sum():.0f}s over {len(startup)} stage processes = {100 * share:.0f}% "
          f"of the repro's {repro_wall:.0f}s (per command, mean s: "
          + ", ".join(f"{c} {s:.1f}" for c, s in startup.groupby("command")["seconds"].mean().items()) + ")")


if __name__ == "__main__":
    main()
