"""A process that loaded the definitions exits in milliseconds instead of seconds.

At interpreter exit Python tears down every module, and the garbage collector traverses the millions of objects
Dagster and the definitions create, again and again as the teardown frees them: 1.7 s after `import dagster`
alone, 3 s after building the definitions, paid by every CLI command and every run process. Freezing the
objects at exit (after the atexit handlers that flush and close things, registered earlier, have run) moves
them out of the collector's sight; the process's memory goes back to the system at exit all the same.
"""

import atexit
import contextlib
import gc
import sys

_registered = False


def freeze_at_exit() -> None:
    """Register once; harmless for an in-process caller (it only acts when the interpreter exits)."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)  # atexit runs handlers last-in first-out: this one runs after later ones
        _registered = True


def flush_std_streams() -> None:
    """Before a fork, and before a forked child's `os._exit` (which flushes nothing): what was printed is kept."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream has nothing more to give
            stream.flush()
