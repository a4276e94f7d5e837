"""Link from the simulated `machine`/`rp2` modules to the virtual board's supervisor.

Runs inside MicroPython. The supervisor starts the MicroPython process with three pipes:
fd 3 carries events and requests to the supervisor, fd 4 carries replies back, fd 5 carries
input-pin changes (button, interlock, trigger) pushed by the supervisor at any time.

Every message is one text line: `<op> <time_ns> <args...>`. Requests (ops starting with `?`)
block until the supervisor answers with one line on fd 4, `<time_ns> <reply>`: the request's
own timestamp comes back with it. Timestamps are CLOCK_REALTIME nanoseconds, the clock the
supervisor also reads, so it can place each event on the board's cycle timeline exactly where
it happened.

Ctrl-C raises KeyboardInterrupt wherever the firmware is, also between the pieces of a line or
between a request and its reply; on a Pico a register access is never split like that. So a
line cut short is cancelled by the next one (it ends in " ~", which the supervisor drops), and
a reply left unread is skipped by the next request, whose timestamp it does not carry.
"""

import select
import time

_out = None
_rep = None
_inp = None
_poll = None
levels = {}  # input pin -> level, as last pushed by the supervisor
_listeners = []  # callables(pin, level) told of each input change
_unfinished = False  # a line is being written: still True at the next send if Ctrl-C cut it


def _open():
    global _out, _rep, _inp, _poll
    try:
        _out = open("/dev/fd/3", "wb")
        _rep = open("/dev/fd/4", "rb")
        _inp = open("/dev/fd/5", "rb")
    except OSError:
        # Not started by a supervisor (e.g. a plain `micropython main.py`): run unattached.
        _out = None
        return
    _poll = select.poll()
    _poll.register(_inp, select.POLLIN)


def attached():
    return _out is not None


class Words:
    """A buffer of 32-bit words sent as hex, written piece by piece: building one long line
    would take heap a Pico never spends on this (the real DMA reads memory directly)."""

    def __init__(self, buf):
        self.buf = buf


def send(op, *args):
    """Write one event line; returns its timestamp (bytes), which tags a request's reply."""
    global _unfinished
    if _out is None:
        return b""
    w = _out.write
    if _unfinished:
        w(b" ~\n")  # the last line was cut short: cancel it
    _unfinished = True
    # Pieces, not one joined line: only this process writes the pipe, so lines stay whole.
    tag = b"%d" % time.time_ns()
    w(b"%s %s" % (op.encode(), tag))
    for a in args:
        if isinstance(a, Words):
            for x in a.buf:
                w(b" %x" % (x & 0xFFFFFFFF))
        else:
            w(b" " + str(a).encode())
    w(b"\n")
    _unfinished = False
    return tag


def request(op, *args):
    """Send a request and return the supervisor's one-line answer (str)."""
    if _out is None:
        return ""
    tag = send("?" + op, *args)
    while True:
        line = _rep.readline()
        if not line:
            return ""
        got = line.split(b" ", 1)
        if got[0] == tag:
            return got[1].decode().strip() if len(got) > 1 else ""


def poll_inputs():
    """Apply input changes the supervisor pushed since the last call; fire listeners."""
    if _poll is None:
        return
    while _poll.poll(0):
        line = _inp.readline()
        if not line:
            return
        if line.startswith(b"!"):
            # A fault injected by a test: the firmware's next hardware access fails, as a
            # peripheral error or a bug would make it fail.
            raise RuntimeError("injected fault: " + line[1:].decode().strip())
        parts = line.split()
        if len(parts) != 2:
            continue
        pin = int(parts[0])
        level = int(parts[1])
        old = levels.get(pin)
        levels[pin] = level
        if old != level:
            for fn in _listeners:
                fn(pin, level)


def listen(fn):
    _listeners.append(fn)


_open()
if _out is not None:
    # Initial input levels come as a block ending with an empty line, before anything runs.
    while True:
        ln = _inp.readline().strip()
        if not ln:
            break
        p, v = ln.split()
        levels[int(p)] = int(v)
