"""Ctrl+C and SIGTERM end a grocer command promptly, and no process it started outlives it.

`on_signals_raise()` (the CLI's first step) turns SIGINT and SIGTERM into `Interrupted`:
the stage unwinds (grocer.atomic removes its temp files, the process pool kills its
workers), and the CLI prints `interrupted` and exits 128 + the signal number (130 for
Ctrl+C, 143 for SIGTERM), as a shell reports a process killed by that signal.

Helper processes (pool workers, torchrun's agent and workers) never act on these signals
themselves: a worker killed by the terminal's Ctrl+C while it held a queue's lock left
the others blocked on it for ever. They ignore them, are killed by their parent when it
unwinds, and on Linux are SIGKILLed by the kernel when their parent dies (kill -9, OOM).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_PID = "GROCER_PARENT_PID"  # the pid a process of the torchrun launch chain must die with
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; a KeyboardInterrupt, so code that cleans up on Ctrl+C does so here too."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: object) -> None:
    for other in SIGNALS:  # a second signal during the clean-up ends the process at once
        signal.signal(other, signal.SIG_DFL)
    raise Interrupted(signum)


def on_signals_raise() -> None:
    for signum in SIGNALS:
        signal.signal(signum, _raise)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then act as usual.

    Two holds: this thread's signal mask, so that processes forked inside start with them
    blocked (they unblock them once they ignore them, see ignore_signals); and a handler
    that only notes them, because the kernel hands a signal to any thread not blocking it
    (torch's and OpenMP's threads do not) and Python then runs the handler here anyway.
    In another thread (a web server's) it holds nothing: Python runs handlers in the main one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: noted.append(signum)) for signum in SIGNALS}
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # a signal that came to this thread: noted now
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if noted:
            signal.raise_signal(noted[0])


def ignore_signals(parent_pid: int) -> None:
    """For a helper process: SIGINT and SIGTERM do nothing; it dies with its parent."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    die_with_parent(parent_pid)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (elsewhere: nothing).

    The parent may already be gone when this runs: `parent_pid` (by default PARENT_PID,
    set by the parent) tells.
    """
    if not sys.platform.startswith("linux"):
        return
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    expected = parent_pid if parent_pid is not None else os.environ.get(PARENT_PID)
    if expected is not None and os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGKILL)
