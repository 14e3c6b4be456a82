"""Ctrl-C and SIGTERM unwind the command as KeyboardInterrupt, so runs are ended cleanly.

LightGBM's C prediction code sets SIGINT to its default action while it runs (seen in
/proc/<pid>/status: SIGINT leaves SigCgt during `Booster.predict`), so a Ctrl-C there killed
the process without cleanup. SIGINT is therefore blocked and waited for by a thread, which
interrupts the main thread with SIGUSR2, a signal nothing else touches.

An interrupt that lands inside a database write (MLflow's SQLite store, the results store) can
leave the driver's connection holding its lock, so the cleanup that follows finds the database
locked. `deferred()` marks such writes: an interrupt arriving inside one is raised when it ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FORWARD = signal.SIGUSR2
_state = {"depth": 0, "pending": None}


def _interrupt(signum, _frame) -> None:
    if _state["depth"]:
        _state["pending"] = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def _forward(main_thread: int) -> None:
    while True:
        signal.sigwait({signal.SIGINT})
        signal.pthread_kill(main_thread, FORWARD)


def interrupts_unwind() -> None:
    """Install the handlers (main thread only, before other threads start)."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(FORWARD, _interrupt)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    main_thread = threading.main_thread().ident
    threading.Thread(target=_forward, args=(main_thread,), name="sigint", daemon=True).start()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold interrupts (of `interrupts_unwind`) until the block ends, then raise them.

    Only the main thread defers: elsewhere, and where the handlers are not installed, the block
    runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0 and (signum := _state["pending"]) is not None:
            _state["pending"] = None
            raise KeyboardInterrupt(f"signal {signum}")
