"""SCPI error/event queue and the IEEE 488.2 Standard Event Status Register.

Errors are identified by an int code.  Negative codes are the standard
SCPI-1999 ones (table below); positive codes are device specific and may be
given a message with :func:`define`.  Unknown codes get the generic message
of their class (e.g. -1xx "Command error").

The queue reply format is ``<code>,"<message>"``; when a detail is given the
message is ``<standard message>;<detail>`` as real instruments do.  Messages
are limited to 255 characters of printable ASCII (SCPI-1999 21.8); quotes
inside are doubled so the reply stays a valid IEEE 488.2 string.
"""

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

NO_ERROR = const(0)
COMMAND_ERROR = const(-100)
INVALID_CHARACTER = const(-101)
SYNTAX_ERROR = const(-102)
INVALID_SEPARATOR = const(-103)
DATA_TYPE_ERROR = const(-104)
PARAMETER_NOT_ALLOWED = const(-108)
MISSING_PARAMETER = const(-109)
UNDEFINED_HEADER = const(-113)
HEADER_SUFFIX_OUT_OF_RANGE = const(-114)
NUMERIC_DATA_ERROR = const(-120)
INVALID_SUFFIX = const(-131)
SUFFIX_NOT_ALLOWED = const(-138)
EXECUTION_ERROR = const(-200)
SETTINGS_CONFLICT = const(-221)
DATA_OUT_OF_RANGE = const(-222)
ILLEGAL_PARAMETER_VALUE = const(-224)
OUT_OF_MEMORY = const(-225)
DEVICE_ERROR = const(-300)
QUEUE_OVERFLOW = const(-350)
INPUT_BUFFER_OVERRUN = const(-363)
QUERY_ERROR = const(-400)
QUERY_INTERRUPTED = const(-410)
QUERY_UNTERMINATED = const(-420)

# Standard Event Status Register bits (IEEE 488.2 11.5.1).
ESR_OPC = const(0x01)  # operation complete
ESR_RQC = const(0x02)  # request control
ESR_QYE = const(0x04)  # query error (-4xx)
ESR_DDE = const(0x08)  # device-dependent error (-3xx and positive codes)
ESR_EXE = const(0x10)  # execution error (-2xx)
ESR_CME = const(0x20)  # command error (-1xx)
ESR_URQ = const(0x40)  # user request
ESR_PON = const(0x80)  # power on

_MAX_MSG = const(255)

_MESSAGES = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -103: "Invalid separator",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -120: "Numeric data error",
    -131: "Invalid suffix",
    -138: "Suffix not allowed",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -225: "Out of memory",
    -300: "Device-specific error",
    -350: "Queue overflow",
    -363: "Input buffer overrun",
    -400: "Query error",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
    -500: "Power on",
    -600: "User request",
    -700: "Request control",
    -800: "Operation complete",
}


def define(code, msg):
    """Register (or replace) the message of a device-specific error code."""
    _MESSAGES[int(code)] = str(msg)


def message(code):
    """Standard message for ``code``; the class message for unknown codes."""
    m = _MESSAGES.get(code)
    if m is not None:
        return m
    if code < 0:
        m = _MESSAGES.get(-((-code) // 100) * 100)
        if m is not None and code <= -100:
            return m
    return "Device-specific error"


def esr_bit(code):
    """The ESR bit an error/event code sets (0 for code 0)."""
    if code == 0:
        return 0
    if code > 0:
        return ESR_DDE
    c = (-code) // 100
    if c == 1:
        return ESR_CME
    if c == 2:
        return ESR_EXE
    if c == 3:
        return ESR_DDE
    if c == 4:
        return ESR_QYE
    if c == 5:
        return ESR_PON
    if c == 6:
        return ESR_URQ
    if c == 7:
        return ESR_RQC
    if c == 8:
        return ESR_OPC
    return ESR_DDE


def _clean(text):
    # Printable ASCII only, quotes doubled, bounded length.
    out = []
    for ch in text:
        o = ord(ch)
        if o < 32 or o > 126:
            ch = "?"
        elif ch == '"':
            ch = '""'
        out.append(ch)
        if len(out) >= _MAX_MSG:
            break
    return "".join(out)


class ScpiError(Exception):
    """An SCPI error: ``code`` (int), ``detail`` (str or None) and ``msg``.

    ``msg`` is the full message: the standard text, plus ``;detail`` if given.
    """

    def __init__(self, code, detail=None):
        code = int(code)
        msg = message(code)
        if detail is not None:
            detail = str(detail)
            msg = msg + ";" + detail
        super().__init__(code, msg)
        self.code = code
        self.detail = detail
        self.msg = msg

    def __str__(self):
        return "%d,%s" % (self.code, self.msg)


class ErrorQueue:
    """Bounded FIFO of (code, message) plus the Standard Event Status Register.

    When a push finds the queue full the newest entry is replaced by -350
    "Queue overflow" and later pushes are dropped until an entry is read
    (IEEE 488.2 / SCPI-1999 21.8.1).  ESR bits are set for every pushed
    code, including dropped ones.
    """

    def __init__(self, depth=16):
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.depth = depth
        self._q = []
        self.esr = 0

    def push(self, code, detail=None):
        code = int(code)
        if code == 0:
            return
        self.esr |= esr_bit(code)
        q = self._q
        if len(q) >= self.depth:
            self.esr |= ESR_DDE
            if q[-1][0] != QUEUE_OVERFLOW:
                q[-1] = (QUEUE_OVERFLOW, _MESSAGES[QUEUE_OVERFLOW])
            return
        msg = message(code)
        if detail is not None:
            msg = msg + ";" + str(detail)
        q.append((code, _clean(msg)))

    def pop(self):
        """Oldest entry as ``'<code>,"<message>"'``; ``'0,"No error"'`` if empty."""
        if not self._q:
            return '0,"No error"'
        code, msg = self._q.pop(0)
        return '%d,"%s"' % (code, msg)

    def pop_code(self):
        """Remove the oldest entry and return only its code (0 if empty)."""
        if not self._q:
            return 0
        return self._q.pop(0)[0]

    def count(self):
        return len(self._q)

    def codes(self):
        """Codes currently queued, oldest first (the queue is not modified)."""
        return [e[0] for e in self._q]

    def clear(self):
        """Empty the queue (as ``*CLS`` does); the ESR is left alone."""
        self._q = []

    def all(self):
        """Every entry, oldest first, comma separated, and empty the queue;
        ``'0,"No error"'`` if empty."""
        return ",".join(self.take_all())

    def take_all(self):
        """Every entry as its own ``'<code>,"<message>"'``, oldest first, and empty the queue.

        This is the ``SYSTem:ERRor:ALL?`` reply in pieces (see ``Parser.run``): sixteen entries
        make some 2 KB, which a worn heap may not have in one piece.
        """
        if not self._q:
            return ['0,"No error"']
        parts = ['%d,"%s"' % e for e in self._q]
        self._q = []
        return parts

    def set_opc(self):
        """Set the OPC bit (bit 0) of the ESR (for ``*OPC``)."""
        self.esr |= ESR_OPC

    def read_esr(self):
        """Return the ESR and clear it (``*ESR?``)."""
        v = self.esr
        self.esr = 0
        return v
