"""Named points where a test can have the process killed, to prove that runs are atomic.

`failpoint("after-promotion")` sends SIGKILL to this process when CREDITRISK_FAILPOINT names that
point, as an out-of-memory kill would at the worst moment; otherwise it does nothing.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "CREDITRISK_FAILPOINT"
POINTS = ("after-first-date-scored", "after-promotion", "after-training", "during-store-write")


def failpoint(name: str) -> None:
    """Die here, at once and without cleanup, when CREDITRISK_FAILPOINT is ``name``."""
    if name not in POINTS:
        raise ValueError(f"unknown failpoint {name!r}; known: {', '.join(POINTS)}")
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
