"""Memory for the leads' DMA read rings, taken once at boot.

A DMA read ring of n words (n a power of two) must start at an address that is a multiple of
its own size, 4n bytes. Allocating such a ring on demand needs a free block twice its size in
one piece, which a heap that has run for hours may no longer have, and a start that fails for
want of memory is a surprise no instrument should spring. So the rings live in one pool,
allocated at boot while the heap is whole: POOL_WORDS words aligned to RING_MAX words (8 KB
on 4 KB), split into UNIT-word units. Each lead holds at most one ring in it.

`place` gives several leads their rings at once, largest first and from the top of the pool
down, so rings placed together never leave holes between them; `fits` answers whether it
would succeed without changing anything, so a command can be refused (SCPI -225) before it
touches a setting.
"""

import gc
from array import array

try:
    from micropython import const
    from uctypes import addressof
except ImportError:  # CPython unit tests: treat the buffer as aligned
    const = lambda x: x  # noqa: E731
    addressof = lambda b: 0  # noqa: E731

RING_MAX = const(1024)  # words in one ring (segments.RECORD_MAX)
POOL_WORDS = const(2048)  # words for all four leads together
UNIT = const(16)  # words of the smallest block
_UNITS = const(POOL_WORDS // UNIT)


def _aligned(words, align):
    """An array of `words` words starting at a multiple of `align` bytes, or None.

    The heap fills its lowest hole that fits: a block that comes out misaligned is let go,
    a spacer the size of the miss takes its place, and the next try lands higher. The
    spacers are freed at the end: small holes at the bottom that other objects fill."""
    spacers = []  # type: list[bytearray]
    try:
        for _ in range(8):
            gc.collect()
            buf = array("I", bytes(4 * words))
            miss = addressof(buf) % align
            if not miss:
                return buf
            del buf
            gc.collect()
            spacers.append(bytearray(align - miss))
        return None
    finally:
        spacers.clear()
        gc.collect()


class RingPool:
    def __init__(self):
        buf = _aligned(POOL_WORDS, 4 * RING_MAX)
        if buf is None:
            # One RING_MAX of slack always holds a RING_MAX-aligned start.
            buf = array("I", bytes(4 * (POOL_WORDS + RING_MAX)))
        self._buf = buf
        self._skip = (-addressof(buf) % (4 * RING_MAX)) // 4
        self._owner = bytearray(_UNITS)  # 0 free, else the holder's id (1..255)

    def _find(self, owners, words):
        """First free aligned block for `words`, from the top of the pool down; or -1."""
        n = (words + UNIT - 1) // UNIT
        step = n if n > 1 else 1
        u = _UNITS - n
        u -= u % step
        while u >= 0:
            for k in range(u, u + n):
                if owners[k]:
                    break
            else:
                return u
            u -= step
        return -1

    def _plan(self, requests):
        """Units of each (holder, words) request, placed largest first, or None if they
        do not fit beside the rings of holders not in `requests`."""
        owners = bytearray(self._owner)
        for who, _ in requests:
            for k in range(_UNITS):
                if owners[k] == who:
                    owners[k] = 0
        order = sorted(requests, key=lambda r: -r[1])
        spots = []
        for who, words in order:
            if not words:
                continue  # (holder, 0): only give its ring back
            if words > RING_MAX:
                return None
            u = self._find(owners, words)
            if u < 0:
                return None
            for k in range(u, u + (words + UNIT - 1) // UNIT):
                owners[k] = who
            spots.append((who, u, words))
        return owners, spots

    def fits(self, requests):
        """Could `place(requests)` succeed now? Changes nothing."""
        return self._plan(requests) is not None

    def place(self, requests):
        """Give each (holder, words) its ring: {holder: memoryview of words words}, or None
        (nothing changed) when they do not fit. A holder's previous ring is given back."""
        plan = self._plan(requests)
        if plan is None:
            return None
        owners, spots = plan
        self._owner[:] = owners
        views = {}
        mv = memoryview(self._buf)
        for who, u, words in spots:
            start = self._skip + u * UNIT
            views[who] = mv[start : start + words]
        return views

    def release(self, who):
        """Give back `who`'s ring (its DMA must be stopped)."""
        for k in range(_UNITS):
            if self._owner[k] == who:
                self._owner[k] = 0

    def free_words(self):
        return UNIT * sum(1 for o in self._owner if not o)
