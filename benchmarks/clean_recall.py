"""How well `clean` finds the sample's injected defects (target: recall >= 0.95 with
<= 1% of clean images dropped). Run after `dvc repro clean` on the sample:

    .venv/bin/python benchmarks/clean_recall.py
"""

import pandas as pd

from grocer import paths
from grocer.sample.truth import clean_recall

truth = pd.read_csv(paths.SAMPLE_TRAIN_TRUTH, dtype=str, keep_default_na=False)
decisions = pd.read_csv(paths.CLEAN_DECISIONS, dtype=str, keep_default_na=False)
for key, value in clean_recall(truth, decisions).items():
    print(f"{key:28s} {value:.4f}")
