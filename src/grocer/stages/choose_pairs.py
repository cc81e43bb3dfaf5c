"""Stage `choose-pairs`: the pairs behind the `topN` slots of `pairs.list`.

The N-th slot gets the N-th most confused class pair of the blend's OOF predictions
(confusions counted both ways, grocer.ensemble.metrics.most_confused_pairs), leaving out
the pairs `pairs.list` already names, so a new dataset needs no hand-written pair list.
The pair is written 'a-b' with a the class of lower index. The choice looks at OOF rows,
like every tuned step; the override that uses the experts tunes its gate cross-fitted, so
an expert that does not help is switched off there.

Writes data/predictions/chosen_pairs.json ({} when there is no slot) and
metrics/choose-pairs.json (per slot: the pair and its OOF confusions).
"""

from __future__ import annotations

from grocer import atomic, paths
from grocer.dataset import load_classes
from grocer.ensemble.metrics import confusion, most_confused_pairs
from grocer.ensemble.inputs import load_oof_rows, read_stage_predictions
from grocer.errors import GrocerError
from grocer.pairs import slot_rank, split_pair, write_chosen
from grocer.params import Params


def run(params: Params) -> None:
    entries = params.pairs.list
    slots = sorted((e for e in entries if slot_rank(e)), key=slot_rank)
    chosen: dict[str, str] = {}
    metrics: dict = {}
    if slots:
        classes = load_classes()
        index = {c: k for k, c in enumerate(classes)}
        named = {frozenset(index[c] for c in split_pair(e)) for e in entries if not slot_rank(e) and
                 all(c in index for c in split_pair(e))}
        rows = load_oof_rows(classes, params.run.folds)
        blend = read_stage_predictions(paths.BLEND_DIR, "oof", rows.ids, classes)
        matrix = confusion(rows.y, blend.probs.argmax(axis=1), len(classes))
        ranked = most_confused_pairs(matrix, max(slot_rank(s) for s in slots), named)
        for slot in slots:
            if slot_rank(slot) > len(ranked):
                raise GrocerError(f"pairs.list: {slot!r} asks for the {slot_rank(slot)}th most confused pair; the "
                                  f"blend's OOF predictions confuse only {len(ranked)} pair(s) not listed already")
            a, b, count = ranked[slot_rank(slot) - 1]
            chosen[slot] = f"{classes[a]}-{classes[b]}"
            metrics[slot] = {"pair": chosen[slot], "oof_confusions": count}
    with atomic.together() as staged:
        write_chosen(staged, chosen)
        staged.write_json(paths.metrics_file("choose-pairs"), metrics)
    for slot, pair in chosen.items():
        print(f"choose-pairs: {slot} = {pair} ({metrics[slot]['oof_confusions']} OOF confusions)")
