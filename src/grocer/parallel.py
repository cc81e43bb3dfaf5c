"""Map a function over many images on every core, keeping the input order, lazily.

The workers ignore Ctrl+C and SIGTERM and die with this process (grocer.interrupt).
When the map stops early (an error, `Interrupted`, the consumer giving up), the items not
yet handed to a worker are cancelled and the workers finish the few chunks they hold, then
exit. They are not killed: one killed while it held a queue's lock, or while it wrote a
result, left the others, or this process's result reader, blocked for ever.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from grocer.interrupt import ignore_signals, signals_held

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 64  # a process pool costs more than it saves on a handful of images
CHUNK = 8  # items per task: enough to amortise the queues, few enough that an interrupt waits little


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
    try:
        with signals_held():  # the workers are forked here: none may catch a signal before it ignores it
            results = pool.map(function, items, chunksize=CHUNK)
        yield from results
    finally:
        pool.shutdown(cancel_futures=True)
