"""`grocer summary`: the evolution table of the last run, read from metrics/final.json.

`make run` ends with it, so a newcomer sees what the pipeline produced without opening
a JSON file: one line per step of the chain (best single model -> blend -> bias -> stack
-> override, as the submit stage wrote them), OOF accuracy and macro-F1, the submitted
step marked, and the submission's test accuracy where the test labels are known (the
embedded sample).
"""

from __future__ import annotations

from grocer.params import Params
from grocer.stages.submit import STEP_NAMES, read_final


def table(final: dict, submitted: str) -> list[str]:
    """The printed lines of the evolution table of `final` (metrics/final.json's content)."""
    lines = [f"{'step':<14}{'OOF acc':>9}{'OOF F1':>9}"]
    for step in STEP_NAMES:
        if step in final:
            mark = "  <- submitted" if step == submitted else ""
            lines.append(f"{step:<14}{final[step]['oof_acc']:>9.3f}{final[step]['oof_f1']:>9.3f}{mark}")
    if "test_acc" in final:
        lines.append(f"submission on the sample's test labels: accuracy {final['test_acc']:.3f}, "
                     f"macro-F1 {final['test_f1']:.3f}")
    return lines


def run(params: Params) -> None:
    final = read_final()
    print("\n".join(table(final, final["submitted"])))
