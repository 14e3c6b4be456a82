"""Ctrl-C and SIGTERM unwind the command as KeyboardInterrupt, so runs are ended cleanly.

LightGBM's C prediction code sets SIGINT to its default action while it runs (seen in
/proc/<pid>/status: SIGINT leaves SigCgt during `Booster.predict`), so a Ctrl-C there killed
the process without cleanup. SIGINT is therefore blocked and waited for by a thread, which
interrupts the main thread with SIGUSR2, a signal nothing else touches.
"""

from __future__ import annotations

import signal
import threading

FORWARD = signal.SIGUSR2


def _interrupt(signum, _frame) -> None:
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
