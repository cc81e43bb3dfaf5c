"""Training: one module per concern, used by the train, infer and pair stages.

models (timm factory), augment (albumentations profiles), data (cache rows -> batches,
predict), mix (mixup/CutMix), sam (SAM), schedule (warm-up + cosine), objectives
(multi-class / binary heads), loop (fit: the training loop), runner (one train or pair
item, from launch to its written files), checkpoint (item files, load_final), resume
(resume state, run identity), tta (test-time views), device (device, threads, AMP),
metrics (scores on arrays), splits (fold rows).
"""
