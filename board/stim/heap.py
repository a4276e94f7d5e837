"""A block of heap held in reserve for the moments that need memory in one piece.

MicroPython's heap is never compacted: after hours of commands its free memory is spread over
many small holes, while opening a file on flash takes about 1.2 KB in one piece, a preset's
JSON about as much again, and a measurement more. (Long replies need none: they are written
entry by entry, see SerialPort.write_replies.) So one block is taken at boot,
while the heap is whole, and `with Spare():` hands it back for such an operation and takes it
again as the operation ends: what the operation left behind is garbage by then, and the
allocator, which fills the lowest hole that fits, gives the block the same room again.

It must be taken back at once: anything long-lived allocated while it is lent (an event-log
entry after a *SAV, the settings a *RCL builds) can land in its room, and would split it for
as long as it lives. The main loop also tries again after each line and while idle, for when
the room was still in use at the end of an operation.
"""

import gc

try:
    from micropython import const
except ImportError:  # CPython unit tests
    const = lambda x: x  # noqa: E731

SIZE = const(4096)
_held = []  # type: list[bytearray]  # the block, when held (a list: no global statement needed)


def take():
    """Hold the block again; without room for it the next operations simply go without."""
    if not _held:
        try:
            _held.append(bytearray(SIZE))
        except MemoryError:
            pass


def held():
    return bool(_held)


def retake():
    """After an operation that borrowed the block: collect its garbage, take the block back."""
    if not _held:
        gc.collect()
        take()


def release():
    """Out of memory: give the block back, so the error can be reported and the loop carries
    on; the main loop takes it again once the heap has room."""
    _held.clear()
    gc.collect()


class Spare:
    """Context manager: the reserve is free inside and taken back on the way out."""

    def __enter__(self):
        _held.clear()
        gc.collect()
        return self

    def __exit__(self, *exc):
        retake()
        return False
