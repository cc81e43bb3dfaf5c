"""Training: one module per concern, used by the train, infer and pair stages.

models (timm factory), augment (albumentations profiles), data (cache rows -> batches,
predict), mix (mixup/CutMix), sam (SAM), schedule (warm-up + cosine), objectives
(multi-class / binary heads), loop (fit: the training loop), checkpoint (item files,
resume state, load_final), tta (test-time views), device (device, threads, AMP),
metrics (scores on arrays), splits (fold rows, run identity).
"""
