"""Non-blocking access to the USB serial console (sys.stdin / sys.stdout).

`read_available()` returns whatever bytes have arrived without ever waiting, so the main loop
keeps polling the button, the interlock and the watchdog while no host talks to it.
Ctrl-C is not seen here: the USB layer turns it into KeyboardInterrupt, which the main loop
lets through so mpremote can always break in.
"""

import select
import sys

if False:  # for mypy only (the type comments): never run, MicroPython has no typing
    # Used only in type comments, which ruff does not read.
    from typing import Any, BinaryIO  # noqa: F401


class SerialPort:
    def __init__(self, stdin=None, stdout=None):
        # Duck-typed streams: a text stream (sys.stdin/stdout) whose .buffer is its binary side,
        # or a binary stream without one. _in/_out are the binary side either way.
        src = sys.stdin if stdin is None else stdin  # type: Any
        dst = sys.stdout if stdout is None else stdout  # type: Any
        self._in = getattr(src, "buffer", src)  # type: BinaryIO
        self._out = getattr(dst, "buffer", dst)  # type: BinaryIO
        self._poll = select.poll()
        self._poll.register(src, select.POLLIN)

    def wait(self, timeout_ms):
        """Wait up to timeout_ms for input; True if some is ready."""
        return bool(self._poll.poll(timeout_ms))

    def read_available(self, limit=256):
        data = b""
        while len(data) < limit and self._poll.poll(0):
            b = self._in.read(1)
            if not b:
                break
            data += b
        return data

    def write_replies(self, replies):
        """One response line: the replies separated by ';', a reply that is a list of pieces
        with ',' between them (see Parser.run). Written piece by piece and in slices, so no
        reply needs one large block of heap."""
        try:
            sep = None
            for r in replies:
                if sep:
                    self._out.write(sep)
                sep = b";"
                if isinstance(r, list):
                    comma = None
                    for piece in r:
                        if comma:
                            self._out.write(comma)
                        comma = b","
                        self._write(piece)
                else:
                    self._write(r)
        finally:
            self._out.write(b"\n")  # even after a failure: the host's next line starts clean

    def _write(self, text):
        for i in range(0, len(text), 128):
            self._out.write(text[i : i + 128].encode())
