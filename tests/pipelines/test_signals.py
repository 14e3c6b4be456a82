"""Interrupts held over a database write are raised when the write ends, not inside it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, time
from pipelines.signals import deferred, interrupts_unwind

interrupts_unwind()
steps = []
try:
    with deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # the forwarding thread interrupts within this
        steps.append("write finished")
    steps.append("after the block")
except KeyboardInterrupt:
    steps.append("interrupted")
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    steps.append("not interrupted")
except KeyboardInterrupt:
    steps.append("interrupted outside")
print(",".join(steps))
"""


def test_an_interrupt_inside_deferred_is_raised_when_the_block_ends():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "write finished,interrupted,interrupted outside"


def test_deferred_without_the_handlers_runs_the_block():
    from pipelines.signals import deferred

    with deferred():
        value = 1
    assert value == 1
