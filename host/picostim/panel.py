"""`picostim panel`: a live front panel for a PicoStim or its virtual board, in the terminal.

    picostim sim                    a virtual board with this panel on it
    picostim panel --port PORT      the same panel for a real board (or any port)

The panel shows global output and each lead's enable, current and ramp, the interlock, faults,
the instructor lock and the session time left; for a virtual board, a live strip chart of every
lead's A and B phases and the sync line, from the executed PIO output (short captures over the
board's control socket); for a real board, the board's own measurements (MEASure<n>:WIDTh?,
MEASure<n>:PERiod?), or the programmed timing where its firmware cannot measure.

Serial use is brief and polite: the port is opened for each exchange (a status poll a second,
a console command, the error queue after a bench action) and closed again, so PyVISA, mpremote
or `picostim scpi` can use the same port meanwhile. Every exchange runs in a worker thread:
the screen never waits for the port.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Button, Input, RichLog, Static

from picostim.client import PicoStimError, ScpiClient
from picostim.pinmap import PINS
from picostim.sim.waveform import SYS_HZ, Waveform

LEADS = 4
POLL_S = 1.0  # status poll period
CAPTURE_S = 0.1  # one capture window of the live trace
SHORT_PRESS_S = 0.3  # as a finger presses it; the firmware debounces for 30 ms
LONG_PRESS_S = 2.5  # the firmware's long press is 2 s
HISTORY = 600  # columns kept per signal (wider than any terminal the strip is drawn in)
# Time per strip-chart column, in cycles (+/- step through them).
SCALES = [SYS_HZ * us // 1_000_000 for us in (100, 200, 500, 1000, 2000, 5000, 10_000)]
SCALES += [SYS_HZ * ms // 1000 for ms in (20, 50, 100)]
DEFAULT_SCALE = SCALES.index(SYS_HZ // 100)  # 10 ms per column
NO_LIMIT = 9.9e37  # SCPI's "not a number / infinite"

# Colours of the two phases of a lead's biphasic pulse, and of the sync line.
A_COLOUR = "#ff8c42"
B_COLOUR = "#4aa8ff"
SYNC_COLOUR = "#e5c07b"
IDLE = "#5c6370"

# One status poll: two lines (the board's line buffer takes 256 bytes). Every unit starts at
# the root (`:`) so that the header path of the previous one does not apply.
STATUS_QUERY = (
    "OUTP:GLOB?;"
    + "".join(":OUTP%d?;" % n for n in range(1, LEADS + 1))
    + ":SYST:INT?;:SYST:LOCK?;:SYST:SESS:REM?;:TRIG:SOUR?;:SYST:FAUL?"
)
LEAD_QUERY = ";".join(
    [":SOUR%d:CURR?" % n for n in range(1, LEADS + 1)]
    + [":SOUR%d:PULS:CYCL?" % n for n in range(1, LEADS + 1)]
    + [":SOUR%d:PULS:SHAP?" % n for n in range(1, LEADS + 1)]
)
# Self-measurement (real boards): each value follows a marker with a fixed reply, so a value
# the board cannot give (an execution error) leaves a recognisable hole. A measurement holds
# the board's main loop for up to a few periods of the lead, so one running lead is measured
# per status poll, in turn.
_MARK = ":SYST:VERS?"
_MARK_REPLY = "1999.0"
UNDEFINED_HEADER = -113


def meas_query(lead: int) -> str:
    """Width and period of lead `lead` (1..4), each after a marker."""
    return "%s;:MEAS%d:WIDT?;%s;:MEAS%d:PER?" % (_MARK, lead, _MARK, lead)


# ------------------------------------------------------------------------------- formatting


def split_units(reply: str) -> list[str]:
    """Split a reply line on `;` outside double quotes (fault texts may hold a `;`)."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in reply:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def fmt_time(seconds: float) -> str:
    """200 us -> '200 µs', 0.05 -> '50.0 ms', 1.5 -> '1.50 s'."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale or unit == "µs":
            v = seconds / scale
            digits = 0 if v >= 100 else 1 if v >= 10 else 2
            if unit == "µs" and v >= 10:
                digits = 0
            return "%.*f %s" % (digits, v, unit)
    raise AssertionError  # pragma: no cover


def fmt_hz(hz: float) -> str:
    if hz >= 1000:
        return "%.3g kHz" % (hz / 1000)
    return "%.3g Hz" % hz


def fmt_amps(amps: float) -> str:
    return "%.2f mA" % (amps * 1e3)


def fmt_left(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return "%d:%02d:%02d" % (s // 3600, s % 3600 // 60, s % 60)
    return "%d:%02d" % (s // 60, s % 60)


def has_query(line: str) -> bool:
    """True if a program message holds a query unit (a header ending in `?`)."""
    for unit in split_units(line):
        header = unit.strip().split(None, 1)[0] if unit.strip() else ""
        if header.endswith("?"):
            return True
    return False


# ------------------------------------------------------------------------------- status


@dataclass
class Status:
    """What one status poll read from the instrument."""

    global_on: bool
    enabled: list[bool]
    interlock_closed: bool
    locked: bool
    session_left: float | None  # seconds, None without a session limit
    trigger_source: str
    faults: list[tuple[int, str]]
    currents: list[float]  # programmed current of each lead (A)
    cycles: list[tuple[int, int, int]]  # width, gap, period of each lead (cycles)
    biphasic: list[bool]


def parse_faults(text: str) -> list[tuple[int, str]]:
    return [
        (int(code), msg) for code, msg in re.findall(r'(-?\d+),"([^"]*)"', text) if int(code) != 0
    ]


def parse_status(reply: str, leads_reply: str) -> Status:
    """Parse the replies to STATUS_QUERY and LEAD_QUERY; ValueError if they do not fit."""
    u = split_units(reply)
    v = split_units(leads_reply)
    if len(u) != 10 or len(v) != 3 * LEADS:
        raise ValueError("unexpected reply %r / %r" % (reply, leads_reply))
    left = float(u[7])
    cycles = []
    for text in v[LEADS : 2 * LEADS]:
        w, g, p = (int(x) for x in text.split(","))
        cycles.append((w, g, p))
    return Status(
        global_on=u[0] == "1",
        enabled=[x == "1" for x in u[1 : 1 + LEADS]],
        interlock_closed=u[5].upper().startswith("CLOS"),
        locked=u[6] == "1",
        session_left=None if left >= NO_LIMIT / 10 else left,
        trigger_source=u[8],
        faults=parse_faults(u[9]),
        currents=[float(x) for x in v[:LEADS]],
        cycles=cycles,
        biphasic=[x.upper().startswith("BIPH") for x in v[2 * LEADS :]],
    )


def parse_marked(reply: str, count: int) -> list[float | None]:
    """The `count` values of a reply to marker;query;marker;query...: None for each one the
    board could not give (its marker is followed by the next marker, or by nothing)."""
    units = split_units(reply)
    values: list[float | None] = []
    i = 0
    while i < len(units):
        if units[i] != _MARK_REPLY:
            raise ValueError("unexpected reply %r" % reply)
        nxt = units[i + 1] if i + 1 < len(units) else _MARK_REPLY
        if nxt == _MARK_REPLY:
            values.append(None)
            i += 1
        else:
            try:
                value: float | None = float(nxt)
            except ValueError:
                value = None
            if value is not None and value >= NO_LIMIT / 10:
                value = None
            values.append(value)
            i += 2
    return (values + [None] * count)[:count]


@dataclass
class Measured:
    """What the board measured on one lead's pins (seconds), or why it could not."""

    width: float | None = None
    period: float | None = None
    why: str = ""


# ------------------------------------------------------------------------------- live trace


def high_columns(wf: Waveform, name: str, cpc: int) -> list[bool]:
    """For each whole `cpc`-cycle column of the window: was the output high at any time in it."""
    n = max(1, wf.cycles // cpc)
    cols = [False] * n

    def mark(start: int, end: int) -> None:
        first = max(0, start // cpc)
        last = min(n - 1, max(start, end - 1) // cpc)
        for i in range(first, last + 1):
            cols[i] = True

    level = wf.initial_level(name)
    since = 0
    for e in wf.edges(name):
        if level and not e.level:
            mark(since, e.cycle)
        elif e.level and not level:
            since = e.cycle
        level = e.level
    if level:
        mark(since, wf.cycles)
    return cols


def _median(values: Sequence[int]) -> int:
    s = sorted(values)
    return s[len(s) // 2]


@dataclass
class Chunk:
    """One capture window turned into strip-chart columns and a few measured values."""

    cpc: int
    leads: list[list[int]]  # per lead, per column: bit 0 phase A was high, bit 1 phase B
    sync: list[int]
    width: list[int | None]  # median phase-A width in the window (cycles)
    period: list[int | None]  # median time between phase-A rises (cycles)
    current: list[float | None]  # each lead's DAC current at the end of the window (A)

    @classmethod
    def from_waveform(cls, wf: Waveform, cpc: int) -> Chunk:
        leads, width, period, current = [], [], [], []
        for n in range(1, LEADS + 1):
            a = high_columns(wf, "ch%d_a" % n, cpc)
            b = high_columns(wf, "ch%d_b" % n, cpc)
            leads.append([int(x) | int(y) << 1 for x, y in zip(a, b, strict=True)])
            ps = wf.pulses("ch%d_a" % n)
            width.append(_median([f - r for r, f in ps]) if ps else None)
            rises = [e.cycle for e in wf.edges("ch%d_a" % n) if e.level]
            gaps = [y - x for x, y in zip(rises, rises[1:], strict=False)]
            period.append(_median(gaps) if gaps else None)
            pts = wf.currents.get("ch%d_current" % n)
            current.append(float(pts[-1][1]) if pts else None)
        sync = [int(x) for x in high_columns(wf, "sync", cpc)]
        return cls(cpc, leads, sync, width, period, current)


@dataclass
class Trace:
    """The strip chart's history: captured windows joined end to end, newest last."""

    scale: int = DEFAULT_SCALE
    leads: list[deque[int]] = field(
        default_factory=lambda: [deque(maxlen=HISTORY) for _ in range(LEADS)]
    )
    sync: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY))
    width: list[int | None] = field(default_factory=lambda: [None] * LEADS)
    period: list[int | None] = field(default_factory=lambda: [None] * LEADS)
    current: list[float | None] = field(default_factory=lambda: [None] * LEADS)
    captures: int = 0

    @property
    def cpc(self) -> int:
        return SCALES[self.scale]

    def add(self, chunk: Chunk) -> None:
        self.captures += 1
        self.current = list(chunk.current)
        for n in range(LEADS):
            if chunk.width[n] is not None:
                self.width[n] = chunk.width[n]
            if chunk.period[n] is not None:
                self.period[n] = chunk.period[n]
        if chunk.cpc != self.cpc:
            return  # drawn for another time scale: keep only its measurements
        for n in range(LEADS):
            self.leads[n].extend(chunk.leads[n])
        self.sync.extend(chunk.sync)

    def forget(self, lead: int) -> None:
        """Lead `lead` (0..3) has stopped: its measured timing is history."""
        self.width[lead] = self.period[lead] = None

    def rescale(self, step: int) -> bool:
        scale = min(len(SCALES) - 1, max(0, self.scale + step))
        if scale == self.scale:
            return False
        self.scale = scale
        for d in self.leads:
            d.clear()
        self.sync.clear()
        return True

    def high_columns(self, lead: int) -> int:
        """How many columns of lead `lead` (1..4) show a pulse."""
        return sum(1 for c in self.leads[lead - 1] if c)


_CELLS = {  # column code -> (character, style)
    0: ("─", IDLE),
    1: ("▀", A_COLOUR),
    2: ("▄", B_COLOUR),
    3: ("▀", "%s on %s" % (A_COLOUR, B_COLOUR)),  # both phases: top half A, bottom half B
}
_SYNC_CELLS = {0: ("─", IDLE), 1: ("▀", SYNC_COLOUR)}


def strip(cells: Sequence[int], width: int, sync: bool = False) -> Text:
    """`width` columns of a strip chart, right-aligned (newest on the right)."""
    t = Text(no_wrap=True, overflow="crop")
    shown = list(cells)[-width:] if width > 0 else []
    if len(shown) < width:
        t.append("·" * (width - len(shown)), style=IDLE)
    table = _SYNC_CELLS if sync else _CELLS
    i = 0
    while i < len(shown):  # runs of one kind of cell: few spans to draw
        j = i
        while j < len(shown) and shown[j] == shown[i]:
            j += 1
        char, style = table[shown[i]]
        t.append(char * (j - i), style=style)
        i = j
    return t


def fmt_span(seconds: float) -> str:
    """A time span with 3 significant digits at most: 0.0001 -> '100 µs', 0.38 -> '380 ms'."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale or unit == "µs":
            return "%.3g %s" % (seconds / scale, unit)
    raise AssertionError  # pragma: no cover


# ------------------------------------------------------------------------------- the port


class Link:
    """The serial port, opened for each exchange and closed after it, one exchange at a time."""

    def __init__(self, port: str, timeout: float = 2.5) -> None:
        self.port = port
        self.timeout = timeout
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[ScpiClient]:
        with self._lock:
            client = ScpiClient(self.port, timeout=self.timeout)
            try:
                yield client
            finally:
                client.close()


# ------------------------------------------------------------------------------- widgets


class Outputs(Widget):
    """The waveform area: one row per lead, the sync line and the time scale."""

    DEFAULT_CSS = """
    Outputs { height: 7; }
    """

    def __init__(self, panel: PanelApp, **kw: Any) -> None:
        super().__init__(**kw)
        self.panel = panel
        self._text: Text | None = None

    def redraw(self) -> None:
        """Draw again if anything shown has changed."""
        text = self.panel.render_outputs(self.size.width)
        if text != self._text:
            self._text = text
            self.refresh()

    def on_resize(self) -> None:
        self._text = None
        self.redraw()

    def render(self) -> Text:
        if self._text is None:
            self._text = self.panel.render_outputs(self.size.width)
        return self._text


CSS = """
Screen { layout: vertical; }
#title { height: 1; background: $primary; color: $text; text-style: bold; padding: 0 1; }
#share { height: 1; padding: 0 1; color: $text-muted; }
#state { height: 1; padding: 0 1; }
#hint { height: 1; padding: 0 1; }
#outputs-box {
    height: 9; border: round $primary-lighten-1; border-title-color: $text;
    padding: 0 0 0 1;
}
#console-box {
    height: 1fr; border: round $secondary; border-title-color: $text; padding: 0 0 0 1;
}
#log { height: 1fr; background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
#command { height: 1; border: none; padding: 0; }
#command:focus { background: $boost; }
#actions { height: 1; }
#actions Button { margin: 0 1 0 0; min-width: 0; height: 1; border: none; padding: 0; }
#bench-note { color: $text-muted; width: 1fr; }
"""


class PanelApp(App[None]):
    """The front panel. `bench`: None finds out whether `port` is a virtual board's."""

    TITLE = "PicoStim front panel"
    CSS = CSS
    AUTO_FOCUS = None
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("b", "button", "button"),
        Binding("B", "long_press", "hold button"),
        Binding("i", "interlock", "interlock"),
        Binding("t", "trigger", "trigger"),
        Binding("p", "power_cycle", "power-cycle"),
        Binding("plus,equals_sign", "zoom(-1)", "zoom in"),
        Binding("minus", "zoom(1)", "zoom out"),
        Binding("slash,enter,colon", "console", "console"),
        Binding("escape", "leave_console", "keys", show=False),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]
    BENCH: ClassVar[frozenset[str]] = frozenset(
        {"button", "long_press", "interlock", "trigger", "power_cycle"}
    )

    def __init__(
        self,
        port: str,
        bench: bool | None = None,
        shown_port: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self._stop_event = stop
        self.port = port
        self.shown_port = shown_port or port
        self.link = Link(port)
        self.status: Status | None = None
        self.trace = Trace()
        self.idn: str | None = None
        self.problem: str | None = None  # why the last poll failed
        self.measure: bool | None = None  # the board answers MEAS<n>:...? (real boards)
        self.measured: list[Measured | None] = [None] * LEADS
        self._meas_next = 0  # the lead to measure next (round robin over the running ones)
        self.busy: set[str] = set()  # bench actions under way
        self.closing = threading.Event()
        self._poll_running = False
        self._shown: dict[str, Text] = {}
        self._cap_vb: Any = None
        self._bench_vb: Any = None
        if bench is not False:
            from picostim.sim import VirtualBoard, VirtualBoardError

            try:
                self._cap_vb = VirtualBoard.attach(port)
                self._bench_vb = VirtualBoard.attach(port)
            except (VirtualBoardError, OSError) as exc:
                if bench:
                    raise PicoStimError(
                        "%s: the bench actions need a virtual board" % exc
                    ) from None
                self._close_boards()
        self.sim = self._cap_vb is not None

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="share")
        yield Static(id="state")
        yield Static(id="hint")
        with Vertical(id="outputs-box"):
            yield Outputs(self, id="outputs")
        with Vertical(id="console-box"):
            log = RichLog(id="log", markup=False, wrap=True, auto_scroll=True)
            log.can_focus = False
            yield log
            yield Input(
                id="command",
                placeholder="press / and type SCPI, e.g. OUTP1 ON  (Enter sends, Esc: keys)",
                compact=True,
            )
        with Horizontal(id="actions"):
            for ident, label in (
                ("button", "b on/off"),
                ("long_press", "B hold: clear"),
                ("interlock", "i interlock"),
                ("trigger", "t trigger"),
                ("power_cycle", "p power-cycle"),
            ):
                b = Button(label, id=ident, compact=True)
                b.can_focus = False
                b.display = self.sim
                yield b
            if not self.sim:
                yield Static("bench keys (b B i t p) need the virtual board", id="bench-note")
            q = Button("q quit", id="quit", compact=True, variant="error")
            q.can_focus = False
            yield q

    def on_mount(self) -> None:
        kind = "virtual board" if self.sim else "board"
        self._show_outputs_title()
        self.query_one("#console-box").border_title = "SCPI console (errors read with SYST:ERR?)"
        self._show_title(kind)
        self.query_one("#share", Static).update(
            Text.assemble(
                "PyVISA, mpremote and picostim can use ",
                (self.shown_port, "bold"),
                " at the same time.",
            )
        )
        log = self.query_one(RichLog)
        if self.sim:
            self._say(
                "This is a virtual PicoStim running the real firmware. To start pulses: press /,"
                " type OUTP1 ON and Enter, then Esc and b (the on/off button)."
            )
        else:
            self._say("Front panel for the board on %s. Press / to type SCPI." % self.shown_port)
        log.write(Text("Never connect PicoStim to a person or an animal.", style="dim"))
        self._refresh_all()
        self.set_interval(POLL_S, self._poll)
        self.set_interval(0.25, self._tick)
        self._poll()
        if self.sim:
            self.run_worker(self._capture_loop, thread=True, group="capture")

    def _show_outputs_title(self) -> None:
        if self.sim:
            title = "Outputs: live from the executed PIO ([%s]▀[/] phase A  [%s]▄[/] phase B)" % (
                A_COLOUR,
                B_COLOUR,
            )
        elif self.measure:
            title = "Outputs: measured by the board on its own pins"
        else:
            title = "Outputs: the programmed settings"
        self.query_one("#outputs-box").border_title = title

    def _show_title(self, kind: str) -> None:
        t = Text.assemble(("PicoStim ", "bold"), (kind, ""), "  port ")
        t.append(" %s " % self.shown_port, style="bold reverse")
        if self.idn:
            parts = self.idn.split(",")
            if len(parts) >= 4:
                t.append("  %s id %s fw %s" % (parts[1], parts[2], parts[3]))
        self.query_one("#title", Static).update(t)

    async def action_quit(self) -> None:
        self.closing.set()
        self.exit()

    def on_unmount(self) -> None:
        self.closing.set()
        self._close_boards()

    def _close_boards(self) -> None:
        for vb in (self._cap_vb, self._bench_vb):
            if vb is not None:
                vb.close()
        self._cap_vb = self._bench_vb = None

    # ---------------------------------------------------------------- rendering

    def _tick(self) -> None:
        stop = self._stop_event
        if stop is not None and stop.is_set() and not self.closing.is_set():
            self.closing.set()
            self.exit()

    def _refresh_all(self) -> None:
        if self.closing.is_set():
            return
        try:
            for ident, text in (("state", self.render_state()), ("hint", self.render_hint())):
                if self._shown.get(ident) != text:
                    self._shown[ident] = text
                    self.query_one("#" + ident, Static).update(text)
            self.query_one(Outputs).redraw()
        except NoMatches:
            pass  # the screen is being taken down

    def render_state(self) -> Text:
        st = self.status
        t = Text(no_wrap=True, overflow="ellipsis")
        if st is None:
            t.append(self.problem or "connecting…", style="bold yellow")
            return t
        t.append("OUTPUT ")
        t.append(
            " ON " if st.global_on else " OFF ",
            style="bold black on green" if st.global_on else "bold reverse",
        )
        t.append("  interlock ")
        if st.interlock_closed:
            t.append("closed", style="green")
        else:
            t.append("OPEN", style="bold red")
        t.append("  faults ")
        if st.faults:
            t.append(",".join(str(c) for c, _ in st.faults), style="bold red")
        else:
            t.append("none", style="green")
        t.append("  lock ")
        t.append("ON" if st.locked else "off", style="bold yellow" if st.locked else "")
        t.append("  session ")
        t.append("no limit" if st.session_left is None else fmt_left(st.session_left) + " left")
        return t

    def render_hint(self) -> Text:
        """One line telling a newcomer what the board is doing and what to do next."""
        st = self.status
        if self.problem and st is not None:
            return Text("%s: showing the last status; retrying" % self.problem, style="yellow")
        if st is None:
            return Text("")
        button = "press b (the on/off button)" if self.sim else "send OUTP:GLOB ON"
        if st.faults:
            code, msg = st.faults[0]
            if self.sim:
                fix = "i closes the loop, B clears" if not st.interlock_closed else "B clears it"
            else:
                fix = "SYST:FAUL:CLE clears it"
            return Text("FAULT %d %s → %s" % (code, msg, fix), style="bold red")
        if not st.interlock_closed:
            how = "press i to close it" if self.sim else "close the loop"
            return Text("The interlock is open: no output can turn on (%s)." % how, style="red")
        if not st.global_on:
            if not any(st.enabled):
                return Text("Output off. Enable a lead (type OUTP1 ON), then %s." % button)
            return Text("Output off, lead(s) enabled. To start, %s." % button)
        if not any(st.enabled):
            return Text("Output on, but no lead is enabled: type OUTP1 ON.", style="yellow")
        if st.trigger_source.upper().startswith("EXT"):
            how = " (press t)" if self.sim else ""
            return Text("Output on; trains start at a trigger input edge%s." % how, style="green")
        if st.trigger_source.upper().startswith("BUS"):
            return Text("Output on; trains start at each *TRG command.", style="green")
        return Text(
            "Pulsing. Try SOUR1:FREQ 100, SOUR1:CURR 2mA, SOUR1:PULS:WIDT 100us.", style="green"
        )

    def render_outputs(self, width: int) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        label_w, right = 21, 17
        out.append("    out  current     ", style="bold")
        if self.sim:
            strip_w = max(8, width - label_w - right - 1)
            out.append("◀ older".ljust(strip_w - 7) + "newer ▶", style="dim")
            out.append(" A width  rate\n", style="bold")
            for n in range(LEADS):
                out.append_text(self._lead_label(n))
                out.append_text(strip(self.trace.leads[n], strip_w))
                out.append(" ")
                out.append_text(self._lead_measured(n, right))
                out.append("\n")
            out.append("sync".ljust(label_w))
            out.append_text(strip(self.trace.sync, strip_w, sync=True))
            out.append(" train starts\n", style=IDLE)
            span = strip_w * self.trace.cpc / SYS_HZ
            scale = " %s shown, %s/col, +/- zoom " % (
                fmt_span(span),
                fmt_span(self.trace.cpc / SYS_HZ),
            )
            out.append(" " * label_w)
            out.append(("├" + scale.center(max(0, strip_w - 2), "─") + "┤")[:strip_w], style="dim")
            return out
        if self.measure is False:
            out.append("timing as set (this firmware cannot measure)\n", style="bold")
        else:
            out.append("timing: measured while a lead runs, else as set\n", style="bold")
        for n in range(LEADS):
            out.append_text(self._lead_label(n))
            out.append_text(self._lead_real(n))
            out.append("\n")
        out.append("No live trace from a real board: watch its outputs on a scope.", style="dim")
        return out

    def _lead_label(self, n: int) -> Text:
        t = Text(no_wrap=True)
        st = self.status
        t.append("L%d  " % (n + 1), style="bold")
        if st is None:
            t.append("?".ljust(17))
            return t
        on = st.enabled[n]
        running = on and st.global_on
        t.append(
            "on " if on else "off", style=("bold green" if running else "green") if on else IDLE
        )
        target = st.currents[n]
        actual = self.trace.current[n] if self.sim else None
        if actual is not None and running and abs(actual - target) > 1e-6:
            # ramping up (soft start): the level now, of the programmed current
            cur = "%.2f/%.2fmA" % (actual * 1e3, target * 1e3)
            t.append("  " + cur.ljust(12), style="yellow")
        else:
            t.append("  " + fmt_amps(target).ljust(12), style="" if running else IDLE)
        return t

    def _lead_measured(self, n: int, width: int) -> Text:
        """Phase-A width and pulse rate measured on the captures (the rate as programmed,
        dimmed, while no capture window has held two pulses)."""
        w, p = self.trace.width[n], self.trace.period[n]
        if w is None:
            return Text("—".ljust(width), style=IDLE)
        t = Text("%-9s " % fmt_time(w / SYS_HZ))
        if p:
            t.append(fmt_hz(SYS_HZ / p))
        elif self.status is not None:
            t.append(fmt_hz(SYS_HZ / self.status.cycles[n][2]), style=IDLE)
        t.truncate(width, pad=True)
        return t

    def _lead_real(self, n: int) -> Text:
        st = self.status
        if st is None:
            return Text("")
        m = self.measured[n]
        if m is not None and m.why:
            return Text("measured: %s" % m.why, style="yellow")
        if m is not None and (m.width is not None or m.period):
            t = Text("measured ", style="bold")
            if m.width is not None:
                t.append("A %s" % fmt_time(m.width))
            if m.period:
                t.append(", every %s (%s)" % (fmt_time(m.period), fmt_hz(1 / m.period)))
            return t
        wc, gc, pc = st.cycles[n]
        t = Text("set      ", style="dim")
        if st.biphasic[n]:
            t.append(
                "A %s, gap %s, B %s"
                % (fmt_time(wc / SYS_HZ), fmt_time(gc / SYS_HZ), fmt_time(wc / SYS_HZ))
            )
        else:
            t.append("A %s, monophasic" % fmt_time(wc / SYS_HZ))
        t.append(", %s" % fmt_hz(SYS_HZ / pc))
        if not (st.enabled[n] and st.global_on):
            t.stylize(IDLE)
        return t

    def _echo(self, line: str, answer: Text) -> None:
        """A console command and its reply on one line."""
        t = Text()
        t.append("> ", style="bold cyan")
        t.append(line, style="bold")
        if answer.plain:
            t.append("  → ", style="dim")
            t.append_text(answer)
        self.query_one(RichLog).write(t)

    def _say(self, text: str, style: str = "") -> None:
        self.query_one(RichLog).write(Text(text, style=style))

    # ---------------------------------------------------------------- threads → screen

    def _post(self, fn: Callable[..., object], *args: Any) -> None:
        """Run `fn(*args)` on the screen's thread (from a worker); nothing once closing."""
        if self.closing.is_set():
            return

        def call() -> None:
            try:
                fn(*args)
            except NoMatches:
                pass  # the screen is being taken down

        try:
            self.call_from_thread(call)
        except RuntimeError:
            pass  # the app has gone

    # ---------------------------------------------------------------- status poll

    def _poll(self) -> None:
        if self._poll_running or self.closing.is_set():
            return
        self._poll_running = True
        self.run_worker(self._poll_job, thread=True, group="poll")

    def _poll_job(self) -> None:
        try:
            status, idn, measured = self._read_status()
        except (PicoStimError, OSError, ValueError) as exc:
            self._post(self._poll_failed, str(exc))
        else:
            self._post(self._poll_done, status, idn, measured)
        finally:
            self._poll_running = False

    def _read_status(self) -> tuple[Status, str | None, tuple[int, Measured] | None]:
        measured = None
        idn = None
        with self.link.session() as c:
            if self.idn is None:
                idn = c.query("*IDN?")
            status = parse_status(c.query(STATUS_QUERY), c.query(LEAD_QUERY))
            running = [n for n in range(LEADS) if status.global_on and status.enabled[n]]
            if not self.sim and self.measure is not False and running:
                n = min(running, key=lambda k: (k - self._meas_next) % LEADS)
                self._meas_next = (n + 1) % LEADS
                measured = (n, self._measure(c, n))
        return status, idn, measured

    def _measure(self, c: ScpiClient, n: int) -> Measured:
        """Lead n's width and period as the board measures them (MEASure<n>:WIDTh?, PERiod?).
        The errors a missing value leaves in the queue are the panel's own: it takes them."""
        width, period = parse_marked(c.query(meas_query(n + 1)), 2)
        if width is not None and period is not None:
            self.measure = True
            return Measured(width, period)
        why = ""
        for code, msg in c.errors():
            if code == UNDEFINED_HEADER and "MEAS" in msg.upper():
                self.measure = False  # this firmware has no MEASure: show the settings
                return Measured()
            why = why or msg.partition(";")[2] or msg
        self.measure = True
        return Measured(width, period, why)

    def _poll_done(
        self,
        status: Status,
        idn: str | None,
        measured: tuple[int, Measured] | None,
    ) -> None:
        if self.problem:
            self._say("The board answers again.", style="green")
        self.problem = None
        self.status = status
        for n in range(LEADS):
            if not (status.global_on and status.enabled[n]):
                self.trace.forget(n)
                self.measured[n] = None
        if idn:
            self.idn = idn
            self._show_title("virtual board" if self.sim else "board")
        if measured is not None:
            self.measured[measured[0]] = measured[1]
        self._show_outputs_title()
        self._refresh_all()

    def _poll_failed(self, why: str) -> None:
        if "busy" in why or "another program" in why:
            problem = "port busy: another program has it open"
        elif "no answer" in why:
            problem = "no answer from the board (restarting?)"
        elif "unexpected reply" in why:
            problem = "unexpected reply (another program talking?)"
        else:
            problem = why
        if problem != self.problem:
            self._say("Status: %s" % why, style="yellow")
        self.problem = problem
        self._refresh_all()

    def _poll_soon(self, delay: float = 0.0) -> None:
        self.set_timer(max(0.01, delay), self._poll)

    # ---------------------------------------------------------------- live trace

    def _capture_loop(self) -> None:
        from picostim.sim import VirtualBoardError

        while not self.closing.is_set():
            vb = self._cap_vb
            if vb is None:
                return
            cpc = self.trace.cpc
            try:
                wf = vb.capture(CAPTURE_S)
                chunk = Chunk.from_waveform(wf, cpc)
            except (VirtualBoardError, OSError, ValueError) as exc:
                if self.closing.is_set():
                    return
                self._post(self._say, "Capture failed: %s" % exc, "yellow")
                self.closing.wait(1.0)
                continue
            self._post(self._add_chunk, chunk)

    def _add_chunk(self, chunk: Chunk) -> None:
        self.trace.add(chunk)
        self.query_one(Outputs).redraw()

    # ---------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.BENCH and not self.sim:
            return False
        return True

    def _bench(self, name: str, text: str, fn: Callable[[Any], object], settle: float) -> None:
        """Run a bench action in a worker, then read the error queue and the status."""
        if name in self.busy:
            return
        self.busy.add(name)
        self._say("• " + text, style="cyan")

        def job() -> None:
            vb = self._bench_vb
            try:
                if vb is None:
                    return
                fn(vb)
                time.sleep(settle)
                errors = self._errors()
            except Exception as exc:  # reported on screen, never fatal to the panel
                self._post(self._say, "%s failed: %s" % (text, exc), "red")
            else:
                for code, msg in errors:
                    self._post(self._say, "error %d: %s" % (code, msg), "red")
            finally:
                self._post(self._bench_done, name)

        self.run_worker(job, thread=True, group="bench")

    def _bench_done(self, name: str) -> None:
        self.busy.discard(name)
        self._poll()

    def _errors(self) -> list[tuple[int, str]]:
        try:
            with self.link.session() as c:
                return c.errors()
        except (PicoStimError, OSError):
            return []

    def action_button(self) -> None:
        self._bench(
            "button",
            "button pressed (short): output on/off",
            lambda vb: vb.press_button(SHORT_PRESS_S),
            0.1,
        )

    def action_long_press(self) -> None:
        self._bench(
            "long_press",
            "button held %.1f s: clears faults" % LONG_PRESS_S,
            lambda vb: vb.press_button(LONG_PRESS_S),
            0.1,
        )

    def action_interlock(self) -> None:
        def flip(vb: Any) -> None:
            closed = bool(vb.levels()[PINS["INTERLOCK"]])
            vb.set_interlock(not closed)
            self._post(self._say, "  interlock now %s" % ("OPEN" if closed else "closed"), "cyan")

        self._bench("interlock", "interlock switched", flip, 0.05)

    def action_trigger(self) -> None:
        st = self.status
        if st is not None and not st.trigger_source.upper().startswith("EXT"):
            self._say("  (trains start on this input only with TRIG:SOUR EXT)", style="dim")
        self._bench("trigger", "trigger input pulsed", lambda vb: vb.trigger(), 0.05)

    def action_power_cycle(self) -> None:
        def cycle(vb: Any) -> None:
            vb.power_cycle()

        self._bench("power_cycle", "power cycled: the board boots again", cycle, 0.5)

    def action_zoom(self, step: int) -> None:
        if self.trace.rescale(step):
            self.query_one(Outputs).redraw()

    def action_console(self) -> None:
        self.query_one("#command", Input).focus()

    def action_leave_console(self) -> None:
        self.set_focus(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        ident = event.button.id or ""
        if ident == "quit":
            self.exit()
        elif ident in self.BENCH:
            getattr(self, "action_" + ident)()

    # ---------------------------------------------------------------- console

    @on(Input.Submitted, "#command")
    def _submitted(self, event: Input.Submitted) -> None:
        line = event.value.strip()
        event.input.value = ""
        if not line:
            return
        if line.lower() in ("quit", "exit"):
            self.exit()
            return
        self.run_worker(lambda: self._command_job(line), thread=True, group="console")

    @staticmethod
    def _exchange(c: ScpiClient, line: str) -> str | None:
        """Send a console line and return its reply (None if it gave none). An *OPC? follows
        it, so a query the board rejected costs no timeout: its "1" comes back alone."""
        c.write(line)
        c.write("*OPC?")
        first = c.read_line()
        if first != "1":
            c.read_line()  # the *OPC? reply
            return first
        if not has_query(line):
            return None
        # "1" was either the line's own reply (then the *OPC? one follows at once) or *OPC?'s.
        timeout = c.link.timeout
        c.link.timeout = 0.25
        try:
            return "1" if c.link.readline().endswith(b"\n") else None
        finally:
            c.link.timeout = timeout

    def _command_job(self, line: str) -> None:
        try:
            with self.link.session() as c:
                reply = self._exchange(c, line)
                errors = c.errors()
        except (PicoStimError, OSError) as exc:
            self._post(self._echo, line, Text("picostim: %s" % exc, style="red"))
            return
        if reply is not None:
            answer = Text(reply, style="green")
        elif errors:
            answer = Text("")
        else:
            answer = Text("(no reply)" if has_query(line) else "ok", style="dim")
        self._post(self._echo, line, answer)
        for code, msg in errors:
            self._post(self._say, "error %d: %s" % (code, msg), "red")
        self._post(self._poll_soon, 0.05)


def run_panel(
    port: str,
    bench: bool | None = None,
    shown_port: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the panel on `port` until the user quits (or `stop` is set)."""
    PanelApp(port, bench=bench, shown_port=shown_port, stop=stop).run()
