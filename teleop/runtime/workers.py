"""Worker processes that never outlive their parent: the pool behind scripted collection and rollouts.

Workers are spawned (each makes its own GL context). On Linux each asks the kernel to kill it when
its parent dies (``PR_SET_PDEATHSIG``), elsewhere a thread watches the parent; so ``kill -9`` of
the command leaves no worker behind, and with the workers gone the multiprocessing resource tracker
exits too. When the parent stops on an exception (Ctrl-C, SIGTERM turned into KeyboardInterrupt by
the command line) the pool cancels the queued episodes and lets the few in flight finish: a worker
killed while it sends a result leaves half a message in the result pipe, and the executor's manager
thread then waits for the rest forever. Workers ignore Ctrl-C (the terminal sends it to the whole
process group) for the same reason: the parent alone decides when they stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_PR_SET_PDEATHSIG = 1
_WATCH_INTERVAL_S = 0.5


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_INTERVAL_S)
    os._exit(1)


def _watch_parent(parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(
    processes: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``processes`` spawned workers tied to this process; a worker that dies raises, never hangs."""
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_watch_parent, initargs=(os.getpid(), initializer, initargs))
    try:
        yield pool
    except BaseException:
        pool.shutdown(cancel_futures=True)  # the episodes in flight finish; see the module docstring
        raise
    pool.shutdown()
