"""Stage `sample`: write the embedded demo dataset, its truth files and its demo review journal.

Outputs `data/sample/` (the data contract layout), `data/sample_truth/` (true labels,
injected defects, test labels, groups) and `data/sample_review/demo.jsonl`, all from
params `sample.*`; see grocer.sample.generate for the files and the id rule.

With `data.dir` pointing elsewhere (real data) nothing is generated: each of the three
outputs holds one NOT_GENERATED.txt saying why. They stay declared outputs, so the stage
graph is the same for every dataset and `dvc repro` on a fresh clone needs nothing else.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from grocer import atomic, paths
from grocer.params import Params
from grocer.sample.generate import generate

MAX_WORKERS = 4  # rendering is CPU-bound; beyond a few processes start-up and writes dominate
PLACEHOLDER = "NOT_GENERATED.txt"


def uses_sample(data_dir: str) -> bool:
    return Path(data_dir).resolve() == paths.SAMPLE_DIR.resolve()


def run(params: Params) -> None:
    start = time.perf_counter()
    outputs = (paths.SAMPLE_DIR, paths.SAMPLE_TRUTH_DIR, paths.SAMPLE_REVIEW_DIR)
    if not uses_sample(params.data.dir):
        for directory in outputs:
            with atomic.replace_dir(directory) as tmp:
                (tmp / PLACEHOLDER).write_text(f"data.dir is {params.data.dir}, not {paths.SAMPLE_DIR}: "
                                               "the embedded demo dataset is not generated.\n")
        print(f"sample: data.dir is {params.data.dir}: the demo dataset is not generated")
        return
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    plan = generate(params.sample, *outputs, workers)
    defects = sum(1 for e in plan.train if e.defect)
    print(f"sample: {len(plan.train)} train images ({defects} with injected defects), {len(plan.test)} test images "
          f"-> {paths.SAMPLE_DIR} in {time.perf_counter() - start:.1f}s")
