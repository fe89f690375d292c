"""Process-wide settings of a command run (the allocator and the garbage collector),
made by the program before its command starts; measured with `make bench`."""

from __future__ import annotations

import contextlib
import ctypes
import gc


def tune() -> None:
    """The allocator's and the collector's settings (see each)."""
    _tune_memory()
    _tune_gc()


def _tune_memory() -> None:
    """Process-wide allocator settings, measured with `make bench` (a 1,000,000-row dry
    run peaked at 300 MB without them, 211 MB with them; 100,000 rows: 250 and 188 MB).

    Arrow allocates from malloc, not from its own jemalloc pool, which kept what each
    thread freed; and glibc's malloc maps blocks of 1 MB or more on their own, so that
    freeing one hands it back (its default threshold grows with the blocks it has seen
    freed, and then the heap fragments as the growing key table is reallocated between
    chunks). A 256 KB threshold saved a little more memory but cost a sending run 20%
    of its speed in system calls.
    """
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc: no mallopt
        # The C library is linked into the interpreter: no search for it (ctypes.util
        # takes 9 ms to import and look it up).
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1024 * 1024)


M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def _tune_gc() -> None:
    """Garbage-collector settings, measured with `make bench`: the CPU-bound run (20,000
    rows, 64 in flight) spent 0.6 to 0.8 s of its 5.2 s in the collector; now 0.02 s.

    The 96,000 objects the imports leave (pandas, pandera, pyarrow, click, httpx) live
    as long as the process, yet each full collection walked them all, 40 to 60 ms with
    the event loop stalled: they are frozen out of the collector. And with hundreds of
    rows in progress the youngest generation reached Python's default of 700 objects
    (allocations less frees) every twenty rows or so: 1,100 collections a run, each
    walking every young object. Ten times that threshold: 10 collections.
    """
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)
