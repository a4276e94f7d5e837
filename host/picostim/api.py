"""`PicoStim`: drive a PicoStim from Python with typed settings and typed errors.

    from picostim.api import PicoStim

    with PicoStim.open("auto") as ps:           # or "id:<board id>", "sim", a path, a URL
        ch = ps.channel(1)
        ch.configure(width=200e-6, gap=50e-6, frequency=20, current=0.8e-3)
        ch.enable()
        ps.on()
        print(ch.settings())                    # the values the board actually uses
    # leaving the block turns every output off, also when an exception leaves it

Numbers are in base SI units (seconds, hertz, amperes); a string is passed to the board as
SCPI text, so `"200us"`, `"0.8mA"` and `"MAX"` work too. Every command is checked against the
board's error queue, and a rejected one raises a `picostim.client.ScpiError` subclass that
carries the board's `code` and `message`: `SettingsConflict` (-221), `OutOfRange` (-222),
`InterlockOpen` (201/205), `LimitLocked` (210), ... (see `ERRORS`).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

from picostim.client import PicoStimError, ScpiClient, ScpiError

if TYPE_CHECKING:
    from picostim.sim import VirtualBoard

CHANNELS = 4
SYS_HZ = 125_000_000
NO_SESSION_LIMIT = 9.9e37  # SCPI "not a number" reply of SYST:SESS:REM? without a limit

Value = float | int | str
"""A setting: a number in base SI units (s, Hz, A), or SCPI text such as "200us"."""


# ---------------------------------------------------------------- typed errors


class InstrumentError(ScpiError):
    """An error the board reported, with `code`, `message`, `command` and a `hint`."""

    hint = ""

    def __init__(self, code: int, message: str, command: str = "") -> None:
        super().__init__(code, message, command)
        self.later: list[tuple[int, str]] = []
        """Further errors the board queued after this one (code, message)."""

    def __str__(self) -> str:
        text = super().__str__()
        if self.later:
            text += " (and %d more: %s)" % (
                len(self.later),
                "; ".join("%d,%s" % e for e in self.later),
            )
        return text + (": " + self.hint if self.hint else "")


class CommandError(InstrumentError):
    """-1xx: the board did not understand the command (spelling, syntax, suffix, units)."""

    hint = "check the command's spelling and parameters"


class ExecutionError(InstrumentError):
    """-2xx: a valid command the board could not carry out."""


class SettingsConflict(ExecutionError):
    """-221: the setting is valid alone, but the combination cannot be played or breaks a
    safety limit (pulse longer than the period, duty cycle, charge...)."""

    hint = (
        "the lead keeps its previous settings; make the others fit first "
        "(configure() orders the settings of one call itself)"
    )


class OutOfRange(ExecutionError):
    """-222: the value is outside the setting's range (or over the current limit)."""

    hint = "the lead keeps its previous settings; give a value within the range"


class OutOfMemory(ExecutionError):
    """-225: the records of the leads to run do not fit the board's 2048-word record memory
    (or, rarely, its heap ran short); nothing changed."""

    hint = "shorten periods, bursts or list tables, or turn a lead off"


class IllegalValue(ExecutionError):
    """-224: a parameter value the command does not accept."""


class DeviceError(InstrumentError):
    """-3xx, and device-specific codes without a class of their own."""


class QueryError(InstrumentError):
    """-4xx: a reply was lost (a query interrupted by the next command, for instance)."""


class SafetyStop(InstrumentError):
    """201-205: the safety system stopped the outputs or refuses to start them."""

    hint = "read the faults (`picostim status`), fix the cause, then clear them (SYST:FAUL:CLE)"


class InterlockOpen(SafetyStop):
    """201 (the interlock opened and stopped the outputs) or 205 (it is still open)."""

    hint = "close the interlock loop, then clear the fault (SYST:FAUL:CLE)"


class HostLost(SafetyStop):
    """202: the host heartbeat (SYST:HEAR) expired while the outputs were on."""


class SessionOver(SafetyStop):
    """203: the session time limit is used up."""

    hint = "an instructor resets the session (SYST:SESS:RES) or raises its limit"


class FaultLatched(SafetyStop):
    """204: a fault is latched; the outputs stay off until it is cleared."""


class LimitLocked(InstrumentError):
    """210: the safety limits are locked by an instructor's passcode."""

    hint = 'unlock them first (SYST:UNL "<passcode>")'


class PasscodeError(InstrumentError):
    """211 (wrong passcode) or 212 (too many wrong passcodes: wait)."""


class PresetError(InstrumentError):
    """220 (the preset slot is empty) or 221 (corrupt: defaults were loaded)."""

    hint = "save the preset first (*SAV n)"


ERRORS: dict[int, type[InstrumentError]] = {
    -221: SettingsConflict,
    -222: OutOfRange,
    -224: IllegalValue,
    -225: OutOfMemory,
    201: InterlockOpen,
    202: HostLost,
    203: SessionOver,
    204: FaultLatched,
    205: InterlockOpen,
    210: LimitLocked,
    211: PasscodeError,
    212: PasscodeError,
    220: PresetError,
    221: PresetError,
}
"""Error classes by code; other codes get the class of their SCPI range."""

NOTICES = frozenset((201, 202, 230))
"""Codes the board queues when the safety system acts on its own, not in reply to a command."""


def error_for(code: int, message: str, command: str = "") -> InstrumentError:
    """The typed error for a code the board reported."""
    cls = ERRORS.get(code)
    if cls is None:
        if -199 <= code <= -100:
            cls = CommandError
        elif -299 <= code <= -200:
            cls = ExecutionError
        elif -499 <= code <= -400:
            cls = QueryError
        else:
            cls = DeviceError
    return cls(code, message, command)


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class Identity:
    """The fields of `*IDN?`: `PicoStim,<model>,<board id>,<firmware version>`."""

    manufacturer: str
    model: str
    board_id: str
    """The RP2040's unique id in hex: also the USB serial number (`--port id:<board_id>`)."""
    version: str

    @classmethod
    def parse(cls, line: str) -> Identity:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            raise PicoStimError("unexpected *IDN? reply %r: is it a PicoStim?" % line)
        return cls(*fields)

    def __str__(self) -> str:
        return ",".join((self.manufacturer, self.model, self.board_id, self.version))


class ChannelSettings(TypedDict):
    """A lead's settings as the board uses them (after rounding to whole 8 ns cycles)."""

    width: float  # s, each phase
    gap: float  # s, between the phases of a biphasic pulse
    period: float  # s, pulse start to pulse start
    frequency: float  # Hz
    shape: str  # "biphasic" or "monophasic"
    polarity: str  # "normal" (phase 1 on pin A) or "inverted"
    burst_count: int  # pulses per burst (1: no bursts)
    burst_period: float  # s, burst start to burst start
    train: float  # s, 0 = continuous
    delay: float  # s, before the first pulse
    current: float  # A
    ramp: float  # s, soft-start time of the current
    cycles: tuple[int, int, int]  # width, gap, period in 125 MHz cycles


@dataclass
class ChannelStatus:
    number: int
    enabled: bool
    settings: ChannelSettings

    @property
    def current(self) -> float:
        """The lead's set current, A."""
        return self.settings["current"]


@dataclass
class Status:
    """A snapshot of the whole board (`PicoStim.status()`)."""

    idn: Identity
    output_on: bool
    """OUTPut:GLOBal: the master switch (a lead plays when it and its own enable are on)."""
    channels: list[ChannelStatus]
    interlock_closed: bool
    faults: list[tuple[int, str]]
    """Latched faults (code, message); the outputs stay off until they are cleared."""
    locked: bool
    """The safety limits are locked by an instructor."""
    session_remaining: float | None
    """Seconds of output time left in the session; None without a session limit."""


_SHAPES = {"BIPH": "biphasic", "MON": "monophasic"}
_POLARITIES = {"NORM": "normal", "INV": "inverted"}
_MULTIPLIERS = {
    "EX": 1e18,
    "PE": 1e15,
    "T": 1e12,
    "G": 1e9,
    "MA": 1e6,
    "K": 1e3,
    "M": 1e-3,
    "U": 1e-6,
    "N": 1e-9,
    "P": 1e-12,
    "F": 1e-15,
    "A": 1e-18,
}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def parse_value(text: str, unit: str) -> float | None:
    """The number SCPI text stands for, in base units ("200us" -> 2e-4), as the board reads
    it (SCPI-1999 suffixes: M is milli, MA mega); MIN -> 0, MAX -> inf; None if unknown."""
    word = text.strip().upper()
    if word in ("MIN", "MINIMUM"):
        return 0.0
    if word in ("MAX", "MAXIMUM"):
        return math.inf
    m = _NUMBER.match(text)
    if not m:
        return None
    value, suffix = float(m.group(1)), m.group(2)
    if not suffix:
        return value
    u = unit.upper()
    if suffix.upper() == u:
        return value
    if not u or not suffix.upper().endswith(u):
        return None
    factor = _MULTIPLIERS.get(suffix[: -len(u)].upper())
    return None if factor is None else value * factor


def scpi_text(value: Value) -> str:
    """A setting as SCPI program data: numbers exactly (shortest round-trip form), text as is."""
    if isinstance(value, bool):
        raise TypeError("a setting is a number or SCPI text, not %r" % value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a setting must be finite, not %r" % value)
        return repr(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or any(c in text for c in ";\r\n"):
            raise ValueError("one value per setting, not %r" % value)
        return text
    raise TypeError("a setting is a number or SCPI text, not %r" % (value,))


# ---------------------------------------------------------------- configure() order

# setting -> (SCPI header, unit). Headers take the lead number.
_HEADERS: dict[str, tuple[str, str]] = {
    "width": ("SOUR%d:PULS:WIDT", "s"),
    "gap": ("SOUR%d:PULS:GAP", "s"),
    "frequency": ("SOUR%d:FREQ", "Hz"),
    "period": ("SOUR%d:PULS:PER", "s"),
    "shape": ("SOUR%d:PULS:SHAP", ""),
    "polarity": ("SOUR%d:PULS:POL", ""),
    "burst_count": ("SOUR%d:BURS:COUN", ""),
    "burst_period": ("SOUR%d:BURS:PER", "s"),
    "train": ("SOUR%d:TRA:DUR", "s"),
    "delay": ("SOUR%d:DEL", "s"),
    "current": ("SOUR%d:CURR", "A"),
    "ramp": ("SOUR%d:RAMP", "s"),
}
# Settings where a larger value is harder to play; burst_period is the other way round.
_LARGER_IS_TIGHTER = ("current", "burst_count", "width", "gap", "train", "delay")
_LOOSEN_ORDER = (
    "current",
    "burst_count",
    "burst_period",
    "shape",
    "width",
    "gap",
    "train",
    "delay",
)
_TIGHTEN_ORDER = (
    "shape",
    "width",
    "gap",
    "burst_period",
    "burst_count",
    "delay",
    "train",
    "current",
)


def _is_monophasic(value: Value) -> bool | None:
    word = str(value).strip().upper()
    if word.startswith("MON"):
        return True
    if word.startswith("BIP"):
        return False
    return None


def _loosens(name: str, target: Value, present: dict[str, Any]) -> bool:
    """True if moving this setting to `target` makes every board check easier (or changes
    nothing); False if it may make one harder, or is not known."""
    if name == "shape":
        mon = _is_monophasic(target)
        return bool(mon)  # monophasic plays less: shorter pulse, half the duty cycle
    now = present.get(name)
    if now is None:
        return False
    unit = _HEADERS[name][1]
    new = float(target) if not isinstance(target, str) else parse_value(target, unit)
    if new is None:
        return False
    if name in _LARGER_IS_TIGHTER:
        return bool(new <= now)
    return bool(new >= now)  # burst_period


def plan_configure(channel: int, targets: dict[str, Value], present: dict[str, Any]) -> list[str]:
    """The SCPI lines that move lead `channel` from `present` to `targets`, one per setting,
    in an order the board accepts whenever the targets themselves are playable.

    Every check the board makes on a combination (pulse within the period, off time, duty
    cycle, bursts within the burst period, charge and current limits, monophasic only at
    amplitude 0) gets harder as width, gap, current, burst count, train or delay grow, as
    the burst period shrinks, and as the shape goes from monophasic to biphasic. Only the
    period pulls both ways (a shorter one fits fewer pulses, a longer one fits fewer into a
    burst). So: first every change that makes things easier, each of which leaves a
    combination easier than the present one; then the period, giving a combination easier
    than the target (each other setting is at the easier of its present and target value);
    then every change that makes things harder, each leaving a combination easier than the
    target. Current goes down before the shape turns monophasic and up after it turns
    biphasic.

    `present` holds the lead's present values in base units (width, gap, current,
    burst_count, burst_period, train, delay; shape as "BIPH"/"MON").
    """
    unknown = set(targets) - set(_HEADERS)
    if unknown:
        raise TypeError("unknown setting(s): %s" % ", ".join(sorted(unknown)))
    if "frequency" in targets and "period" in targets:
        raise ValueError("give the frequency or the period, not both")

    def line(name: str) -> str:
        return "%s %s" % (_HEADERS[name][0] % channel, scpi_text(targets[name]))

    first = [n for n in ("ramp", "polarity") if n in targets]
    loosen = [n for n in _LOOSEN_ORDER if n in targets and _loosens(n, targets[n], present)]
    middle = [n for n in ("frequency", "period") if n in targets]
    tighten = [n for n in _TIGHTEN_ORDER if n in targets and n not in loosen]
    return [line(n) for n in first + loosen + middle + tighten]


# ---------------------------------------------------------------- the instrument


class Channel:
    """One lead (1..4) of a PicoStim: `ps.channel(n)`."""

    def __init__(self, ps: PicoStim, number: int) -> None:
        self.ps = ps
        self.number = number

    def __repr__(self) -> str:
        return "<Channel %d of %s>" % (self.number, self.ps.port)

    def configure(
        self,
        *,
        width: Value | None = None,
        gap: Value | None = None,
        frequency: Value | None = None,
        period: Value | None = None,
        current: Value | None = None,
        shape: str | None = None,
        polarity: str | None = None,
        burst_count: int | str | None = None,
        burst_period: Value | None = None,
        train: Value | None = None,
        delay: Value | None = None,
        ramp: Value | None = None,
    ) -> list[str]:
        """Change the given settings (the others keep their values); return the lines sent.

        width, gap, period, burst_period, train (0 = continuous), delay, ramp: seconds;
        frequency: Hz (or period, not both); current: A; shape: "biphasic"/"monophasic";
        polarity: "normal"/"inverted"; burst_count: pulses per burst. Strings go to the board
        as SCPI text ("200us", "MAX").

        One SCPI line per setting, in an order that never passes through a combination the
        board would reject (see `plan_configure`), each checked as it goes: the first one
        rejected raises its typed error, e.g. `SettingsConflict` if the target combination
        itself cannot be played; the settings sent before it stay in effect.
        A running lead restarts with each change, after finishing its pulse in flight.
        """
        targets: dict[str, Value] = {
            k: v
            for k, v in (
                ("width", width),
                ("gap", gap),
                ("frequency", frequency),
                ("period", period),
                ("current", current),
                ("shape", shape),
                ("polarity", polarity),
                ("burst_count", burst_count),
                ("burst_period", burst_period),
                ("train", train),
                ("delay", delay),
                ("ramp", ramp),
            )
            if v is not None
        }
        if not targets:
            return []
        present = self._present() if len(targets) > 1 else {}
        lines = plan_configure(self.number, targets, present)
        for command in lines:
            self.ps.scpi(command)
        return lines

    def _present(self) -> dict[str, Any]:
        n = self.number
        reply = self.ps._query(
            ":SOUR%d:PULS:CYCL?;SHAP?;:SOUR%d:CURR?;DEL?;:SOUR%d:BURS:COUN?;PER?;"
            ":SOUR%d:TRA:DUR?" % (n, n, n, n)
        )
        f = _fields(reply, 7)
        width, gap, period = (int(c) for c in f[0].split(","))
        return {
            "width": width / SYS_HZ,
            "gap": gap / SYS_HZ,
            "period": period / SYS_HZ,
            "shape": f[1],
            "current": float(f[2]),
            "delay": float(f[3]),
            "burst_count": int(f[4]),
            "burst_period": float(f[5]),
            "train": float(f[6]),
        }

    def settings(self) -> ChannelSettings:
        """Every setting of the lead as the board uses it (times rounded to whole cycles)."""
        return self._read()[0]

    def _read(self) -> tuple[ChannelSettings, bool]:
        """(settings, enabled), in one exchange."""
        n = self.number
        reply = self.ps._query(
            ":SOUR%d:PULS:WIDT?;GAP?;PER?;SHAP?;POL?;CYCL?;:SOUR%d:FREQ?;CURR?;RAMP?;DEL?;"
            ":SOUR%d:BURS:COUN?;PER?;:SOUR%d:TRA:DUR?;:OUTP%d?" % (n, n, n, n, n)
        )
        f = _fields(reply, 14)
        width, gap, period = (int(c) for c in f[5].split(","))
        settings = ChannelSettings(
            width=float(f[0]),
            gap=float(f[1]),
            period=float(f[2]),
            frequency=float(f[6]),
            shape=_SHAPES.get(f[3], f[3]),
            polarity=_POLARITIES.get(f[4], f[4]),
            burst_count=int(f[10]),
            burst_period=float(f[11]),
            train=float(f[12]),
            delay=float(f[9]),
            current=float(f[7]),
            ramp=float(f[8]),
            cycles=(width, gap, period),
        )
        return settings, f[13] == "1"

    def enable(self) -> None:
        """Turn this lead's output on (it plays while the global output is on too)."""
        self.ps.scpi("OUTP%d ON" % self.number)

    def disable(self) -> None:
        """Turn this lead's output off (it finishes its pulse in flight)."""
        self.ps.scpi("OUTP%d OFF" % self.number)

    def is_enabled(self) -> bool:
        return self.ps._query("OUTP%d?" % self.number) == "1"


def _fields(reply: str, count: int) -> list[str]:
    f = reply.split(";")
    if len(f) != count:
        raise PicoStimError("unexpected reply %r: is the firmware up to date?" % reply)
    return f


_ERROR_REPLY = re.compile(r'^[+-]?\d+,"')


def _parse_error(line: str) -> tuple[int, str]:
    code, _, message = line.partition(",")
    return int(code), message.strip().strip('"')


def _parse_faults(reply: str) -> list[tuple[int, str]]:
    out = []
    for code, msg in re.findall(r'(-?\d+),"((?:[^"]|"")*)"', reply):
        if int(code):
            out.append((int(code), msg.replace('""', '"')))
    return out


class PicoStim:
    """A connection to one PicoStim (a real board or a virtual one).

    Open with `PicoStim.open(...)`; use as a context manager, which turns every output off
    when the block ends (by an exception too) and closes the connection. Safe to share
    between threads: each exchange with the board holds a lock.
    """

    def __init__(
        self,
        client: ScpiClient,
        board: VirtualBoard | None = None,
        owns_board: bool = False,
    ) -> None:
        """Wrap a connected ScpiClient (`PicoStim.open` is the usual way in). `board`: the
        VirtualBoard behind it, stopped by `close()` if `owns_board`."""
        self._client = client
        self._lock = threading.RLock()
        self._board = board
        self._owns_board = owns_board
        self._attached = False  # self._board came from VirtualBoard.attach: detach on close
        self._closed = False
        self.notices: list[tuple[int, str]] = []
        """Safety stops the board announced in its error queue (201 interlock opened, 202
        heartbeat lost, 230 watchdog reset), oldest first. They are events, not errors of a
        command: the fault stays latched (see `status().faults`) and the next `on()` raises
        `FaultLatched` until it is cleared."""
        try:
            with self._lock:
                client.write("*CLS")  # errors queued before us are not ours to report
                self._idn = Identity.parse(client.query("*IDN?"))
        except BaseException:
            self.close()
            raise
        if self._idn.manufacturer != "PicoStim":
            self.close()
            raise PicoStimError(
                "%s answered *IDN? with %r: not a PicoStim (check --port)"
                % (self.port, str(self._idn))
            )

    @classmethod
    def open(cls, target: str | VirtualBoard | Any = "auto", timeout: float = 5.0) -> PicoStim:
        """Connect to a board.

        target: "auto" (the first board found), "id:<board id>" (USB serial number or
        virtual board uid, or a unique prefix of it), "sim" (a private virtual board, stopped
        by `close()`), a device path ("/dev/ttyACM0", "COM3"), a pyserial URL
        ("socket://host:port"), a running `VirtualBoard`, or an open serial-like object.
        timeout: seconds to wait for each reply (a board answers in milliseconds; the margin
        is for a virtual board on a busy computer).
        """
        from picostim import ports
        from picostim.sim import VirtualBoard

        if isinstance(target, VirtualBoard):
            return cls(ScpiClient(target.port, timeout), board=target)
        if not isinstance(target, str):
            return cls(ScpiClient(target, timeout))
        if target.strip() == "sim":
            from picostim.sim import VirtualBoardError

            try:
                vb = VirtualBoard()
            except (VirtualBoardError, OSError) as exc:
                raise PicoStimError("cannot start a virtual board: %s" % exc) from None
            try:
                client = ScpiClient(vb.port, timeout)
            except BaseException:
                vb.close()
                raise
            return cls(client, board=vb, owns_board=True)
        return cls(ScpiClient(ports.find_port(target), timeout))

    # ---------------------------------------------------------------- connection

    @property
    def port(self) -> str:
        """The port this connection uses."""
        return str(self._client.port_name)

    @property
    def idn(self) -> Identity:
        """The board's identity (read once, when the connection opened)."""
        return self._idn

    @property
    def board(self) -> VirtualBoard | None:
        """The virtual board behind this connection, for its simulated bench and captures
        (`ps.board.capture(0.05)`); None for a real board."""
        if self._board is None and not self._attached and isinstance(self._client.port_name, str):
            from picostim.sim import VirtualBoard, VirtualBoardError, registry

            self._attached = True
            if "://" not in self.port and registry.lookup(self.port) is not None:
                try:
                    self._board = VirtualBoard.attach(self.port)
                except (VirtualBoardError, OSError):
                    self._board = None
        return self._board

    def close(self) -> None:
        """Close the connection (outputs keep their state); stop a board `open("sim")` started."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        finally:
            if self._board is not None and (self._owns_board or self._attached):
                self._board.close()  # stops an owned board, only detaches from an attached one

    def __enter__(self) -> PicoStim:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Turn every output off, then close; an error while turning off is raised only if
        the block itself ended without one."""
        if self._closed:
            return  # closed inside the block: nothing left to turn off through
        try:
            self.off()
        except Exception:
            if exc_type is None:
                raise
        finally:
            self.close()

    def __repr__(self) -> str:
        return "<PicoStim %s at %s>" % (self._idn.board_id, self.port)

    # ---------------------------------------------------------------- SCPI

    def _query(self, command: str) -> str:
        with self._lock:
            try:
                reply = self._client.query(command)
            except PicoStimError:
                # A rejected query sends no reply: report why. A reply that was only late
                # would come before the error queue's, so skip anything that is not one.
                self._check(command, resync=True)
                raise
            self._check(command)
            return reply

    def _check(self, command: str, resync: bool = False) -> None:
        queued = []
        if resync:
            self._client.write("SYST:ERR?")
            for _ in range(8):
                line = self._client.read_line()
                if _ERROR_REPLY.match(line):
                    break
            else:
                raise PicoStimError(
                    "%s sends replies out of step: close the connection and open it again"
                    % self.port
                )
            code, message = _parse_error(line)
            if code:
                queued = [(code, message), *self._client.errors()]
        else:
            queued = self._client.errors()
        errors = []
        for code, message in queued:
            if code in NOTICES:
                self.notices.append((code, message))
            else:
                errors.append((code, message))
        if errors:
            err = error_for(errors[0][0], errors[0][1], command)
            err.later = errors[1:]
            raise err

    def scpi(self, command: str) -> str | None:
        """Send one SCPI line; return the reply if it holds a query (`?`), else None.
        Raises the typed error of the first problem the board reports."""
        if "?" in command:
            return self._query(command)
        with self._lock:
            self._client.write(command)
            self._check(command)
        return None

    # ---------------------------------------------------------------- the instrument

    def channel(self, number: int) -> Channel:
        """Lead `number` (1..4)."""
        if not 1 <= number <= CHANNELS:
            raise ValueError("channel must be 1..%d, not %r" % (CHANNELS, number))
        return Channel(self, number)

    @property
    def channels(self) -> list[Channel]:
        return [Channel(self, n) for n in range(1, CHANNELS + 1)]

    def on(self) -> None:
        """Global output on: every enabled lead starts (raises InterlockOpen, FaultLatched,
        SessionOver... when the safety system refuses)."""
        self.scpi("OUTP:GLOB ON")

    def off(self) -> None:
        """Global output off: every lead finishes its pulse in flight and rests."""
        self.scpi("OUTP:GLOB OFF")

    def is_on(self) -> bool:
        return self._query("OUTP:GLOB?") == "1"

    def trigger(self) -> None:
        """A bus trigger (*TRG): starts the armed leads when TRIGger:SOURce is BUS."""
        self.scpi("*TRG")

    def save(self, slot: int) -> None:
        """Save every lead's settings, current and ramp as preset `slot` (0..9)."""
        self.scpi("*SAV %d" % slot)

    def recall(self, slot: int) -> None:
        """Load preset `slot` (0..9); the outputs are turned off first."""
        self.scpi("*RCL %d" % slot)

    def clear_faults(self) -> None:
        """Clear latched faults (a fault whose cause persists, e.g. an open interlock, stays)."""
        self.scpi("SYST:FAUL:CLE")

    def reset(self) -> None:
        """*RST and *CLS: outputs off, every setting to its default (the limits stay)."""
        self.scpi("*RST;*CLS")

    def faults(self) -> list[tuple[int, str]]:
        """Latched faults as (code, message)."""
        return _parse_faults(self._query("SYST:FAUL?"))

    def status(self) -> Status:
        """Everything at once: leads, global output, interlock, faults, lock, session."""
        channels = []
        for ch in self.channels:
            settings, enabled = ch._read()
            channels.append(ChannelStatus(ch.number, enabled, settings))
        f = _fields(self._query(":OUTP:GLOB?;:SYST:INT?;:SYST:LOCK?;:SYST:SESS:REM?"), 4)
        remaining = float(f[3])
        return Status(
            idn=self._idn,
            output_on=f[0] == "1",
            channels=channels,
            interlock_closed=f[1].upper().startswith("CLOS"),
            faults=self.faults(),
            locked=f[2] == "1",
            session_remaining=None if remaining >= NO_SESSION_LIMIT else remaining,
        )


__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelSettings",
    "ChannelStatus",
    "CommandError",
    "DeviceError",
    "ERRORS",
    "ExecutionError",
    "FaultLatched",
    "HostLost",
    "Identity",
    "IllegalValue",
    "InstrumentError",
    "InterlockOpen",
    "LimitLocked",
    "NOTICES",
    "OutOfMemory",
    "OutOfRange",
    "PasscodeError",
    "PicoStim",
    "PresetError",
    "QueryError",
    "SafetyStop",
    "SessionOver",
    "SettingsConflict",
    "Status",
    "error_for",
    "parse_value",
    "plan_configure",
    "scpi_text",
]
