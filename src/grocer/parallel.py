"""Map a function over many images on every core, keeping the input order."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 64  # a process pool costs more than it saves on a handful of images


def map_in_processes(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    workers = min(os.cpu_count() or 1, 8)
    if workers == 1 or len(items) < SERIAL_BELOW:
        return [function(item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, items, chunksize=32))
