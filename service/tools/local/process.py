"""Child processes that cannot outlive the process that started them.

The local servers run in their own session (so Ctrl-C in a terminal reaches only the stack, which stops them in
order). If the launcher itself is killed (SIGKILL, a CI timeout), nothing would stop them: Linux's parent-death
signal does. It fires when the *thread* that forked exits, so servers must be started from a long-lived thread
(the main thread, as every launcher here does).
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for subprocess.Popen: SIGTERM this child when its parent dies (Linux; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
