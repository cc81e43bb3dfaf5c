"""Stage `sample`: write the embedded demo dataset, its truth files and its demo review journal.

Outputs `data/sample/` (the data contract layout), `data/sample_truth/` (true labels,
injected defects, test labels, groups) and `data/sample_review/demo.jsonl`, all from
params `sample.*`; see grocer.sample.generate for the files and the id rule.
"""

from __future__ import annotations

import os
import time

from grocer import paths
from grocer.params import Params
from grocer.sample.generate import generate

MAX_WORKERS = 4  # rendering is CPU-bound; beyond a few processes start-up and writes dominate


def run(params: Params) -> None:
    start = time.perf_counter()
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    plan = generate(params.sample, paths.SAMPLE_DIR, paths.SAMPLE_TRUTH_DIR, paths.SAMPLE_REVIEW_DIR, workers)
    defects = sum(1 for e in plan.train if e.defect)
    print(f"sample: {len(plan.train)} train images ({defects} with injected defects), {len(plan.test)} test images "
          f"-> {paths.SAMPLE_DIR} in {time.perf_counter() - start:.1f}s")
