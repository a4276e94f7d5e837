"""Non-blocking access to the USB serial console (sys.stdin / sys.stdout).

`read_available()` returns whatever bytes have arrived without ever waiting, so the main loop
keeps polling the button, the interlock and the watchdog while no host talks to it.
Ctrl-C is not seen here: the USB layer turns it into KeyboardInterrupt, which the main loop
lets through so mpremote can always break in.
"""

import select
import sys


class SerialPort:
    def __init__(self, stdin=None, stdout=None):
        src = sys.stdin if stdin is None else stdin
        dst = sys.stdout if stdout is None else stdout
        self._in = getattr(src, "buffer", src)
        self._out = getattr(dst, "buffer", dst)
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

    def write_line(self, text):
        self._out.write(text.encode() + b"\n")
