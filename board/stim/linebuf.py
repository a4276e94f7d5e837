"""Assemble command lines from a byte stream (USB CDC / UART) in bounded memory.

``LineBuffer.feed(data)`` takes any bytes-like chunk and returns the list of
items completed by it, in order:

* a ``str`` for each complete, non-empty line (ASCII, terminator removed),
* ``OVERRUN`` in place of a line longer than ``maxlen`` bytes (the caller
  queues -363 "Input buffer overrun"; ``OVERRUN.code`` is -363),
* ``GARBAGE`` in place of a line containing a byte >= 0x80 or a control
  character other than TAB (the caller queues -102; ``GARBAGE.code``).

``\\n`` ends a line (so ``\\r\\n`` does too); ``\\r`` is ignored wherever it
appears; empty lines produce nothing.  An overlong line is reported once and
the rest of it is discarded up to its terminator, so the next line is clean.
Partial lines are kept across calls.  The line store is one bytearray
allocated at construction; the per-byte path does not allocate.
"""

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

_OK = const(0)
_GARBAGE = const(1)
_OVERRUN = const(2)


class _Marker:
    def __init__(self, name, code):
        self.name = name
        self.code = code

    def __repr__(self):
        return self.name


OVERRUN = _Marker("OVERRUN", -363)
GARBAGE = _Marker("GARBAGE", -102)


class LineBuffer:
    def __init__(self, maxlen=256):
        if maxlen < 1:
            raise ValueError("maxlen")
        self.maxlen = maxlen
        self._buf = bytearray(maxlen)
        self._mv = memoryview(self._buf)
        self._n = 0
        self._state = _OK

    def reset(self):
        """Drop any partial line."""
        self._n = 0
        self._state = _OK

    def pending(self):
        """Number of bytes of the current, unterminated line."""
        return self._n

    def feed(self, data):
        out = []  # type: list[str | _Marker]
        buf = self._buf
        mx = self.maxlen
        n = self._n
        st = self._state
        for b in data:
            if b == 10:
                if st == _OVERRUN:
                    out.append(OVERRUN)
                elif st == _GARBAGE:
                    out.append(GARBAGE)
                elif n:
                    out.append(str(self._mv[:n], "ascii"))
                n = 0
                st = _OK
            elif b == 13 or st == _OVERRUN:
                pass
            elif n >= mx:
                st = _OVERRUN
            else:
                if b > 126 or (b < 32 and b != 9):
                    st = _GARBAGE
                elif st == _OK:
                    buf[n] = b
                n += 1
        self._n = n
        self._state = st
        return out
