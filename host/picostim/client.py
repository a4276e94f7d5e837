"""A SCPI client for PicoStim over any serial-like link (USB serial, a virtual board's port).

    with ScpiClient("/dev/ttyACM0") as inst:
        print(inst.query("*IDN?"))
        inst.write("SOUR1:PULS:WIDT 200us")
        inst.check()            # raises ScpiError with the board's code and text if it objected

Ports are opened with pyserial's `serial_for_url`, so `socket://host:port` and `loop://` work
beside device paths; an already-open serial object may be passed instead.
"""

from __future__ import annotations

from typing import Any

import serial


class PicoStimError(Exception):
    """An expected failure, reported to the user without a traceback."""


class ScpiError(PicoStimError):
    """The instrument reported an error: `code` and `message` as SYSTem:ERRor? gave them."""

    def __init__(self, code: int, message: str, command: str = "") -> None:
        self.code = code
        self.message = message
        self.command = command
        where = " (after %r)" % command if command else ""
        super().__init__("%d,%s%s" % (code, message, where))


def parse_error(reply: str) -> tuple[int, str]:
    code, _, msg = reply.partition(",")
    return int(code), msg.strip().strip('"')


def open_port(port: str | Any, timeout: float = 2.0) -> Any:
    if not isinstance(port, str):
        return port
    try:
        return serial.serial_for_url(port, baudrate=115200, timeout=timeout, exclusive=True)
    except serial.SerialException as exc:
        msg = str(exc)
        hint = ""
        if "busy" in msg.lower() or "lock" in msg.lower():
            hint = ": is another program using %s?" % port
        elif "No such file" in msg or "could not open" in msg:
            hint = ": is the board plugged in (or the simulator running)?"
        raise PicoStimError("cannot open %s%s (%s)" % (port, hint, msg)) from None


class ScpiClient:
    """Line-based SCPI over a serial link: `write`, `query`, `errors`, `check`."""

    def __init__(self, port: str | Any, timeout: float = 2.0) -> None:
        self.port_name = port if isinstance(port, str) else getattr(port, "port", "?")
        self.link = open_port(port, timeout)
        self.timeout = timeout
        self.link.reset_input_buffer()
        # A host that vanished mid-command leaves half a line in the board's buffer for up
        # to a second; a newline ends it (an empty line is ignored), so our first command
        # is never glued to it.
        self.link.write(b"\n")

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> ScpiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, command: str) -> None:
        self.link.write(command.encode("ascii", "replace") + b"\n")

    def read_line(self) -> str:
        line = self.link.readline()
        if not line.endswith(b"\n"):
            raise PicoStimError(
                "no answer from %s within %.1f s: is it a PicoStim, and is its firmware "
                "running?" % (self.port_name, self.timeout)
            )
        return line.decode("ascii", "replace").rstrip("\r\n")

    def query(self, command: str) -> str:
        self.write(command)
        return self.read_line()

    def errors(self) -> list[tuple[int, str]]:
        """Read the error queue until it is empty."""
        out = []
        for _ in range(32):
            code, msg = parse_error(self.query("SYST:ERR?"))
            if code == 0:
                break
            out.append((code, msg))
        return out

    def check(self, command: str = "") -> None:
        """Raise ScpiError for the first error the instrument queued, if any."""
        errs = self.errors()
        if errs:
            raise ScpiError(errs[0][0], errs[0][1], command)

    def command(self, command: str) -> None:
        """Send a setting and raise ScpiError if the instrument rejected it."""
        self.write(command)
        self.check(command)
