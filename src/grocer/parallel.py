"""Map a function over many images on every core, keeping the input order, lazily.

The workers ignore Ctrl+C and SIGTERM and die with this process (grocer.interrupt):
when the map stops early (an error, `Interrupted`, the consumer giving up) they are
killed at once, not left to finish the queue or to block on a lock a dying sibling held.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from grocer.interrupt import ignore_signals, signals_held

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 64  # a process pool costs more than it saves on a handful of images


def map_in_processes(
    function: Callable[[Item], Result], items: Sequence[Item], workers: int | None = None
) -> Iterator[Result]:
    """function(item) for every item, in order, as each is ready: a consumer can write each
    result away (the image cache does) instead of holding them all.

    `workers`: the number of processes; by default one per core, at most 8.
    """
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers == 1 or len(items) < SERIAL_BELOW:
        yield from map(function, items)
        return
    pool = ProcessPoolExecutor(workers, initializer=ignore_signals, initargs=(os.getpid(),))
    finished = False
    try:
        with signals_held():  # the workers are forked here: none may catch a signal before it ignores it
            results = pool.map(function, items, chunksize=32)
        yield from results
        finished = True
    finally:
        if not finished:
            for worker in list(pool._processes.values()):  # no public way to stop running work
                worker.kill()
        pool.shutdown(cancel_futures=True)
