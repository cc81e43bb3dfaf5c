"""Map a function over many images on every core, keeping the input order, lazily."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 64  # a process pool costs more than it saves on a handful of images


def map_in_processes(function: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
    """function(item) for every item, in order, as each is ready: a consumer can write each
    result away (the image cache does) instead of holding them all."""
    workers = min(os.cpu_count() or 1, 8)
    if workers == 1 or len(items) < SERIAL_BELOW:
        yield from map(function, items)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(function, items, chunksize=32)
