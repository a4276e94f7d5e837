"""SCPI commands of the leads: SOURce<n>:..., OUTPut..., TRIGger... (pure logic, no hardware).

Every setting is validated in full before anything changes: a value out of range is -222, a
combination the pulse engine cannot play (e.g. a pulse longer than its period) is -221, and
in both cases the lead keeps its previous settings. Times are held in whole 125 MHz cycles;
a value that is not a whole number of cycles is rounded to the nearest one and its query
returns the value actually used.

List mode: SOURce<n>:LIST:PULSe [APPend,]<onset>,<width>[,<onset>,<width>...] loads a table
of up to 64 pulses (APPend adds to the present table, for tables longer than one 256-character
line), each with its onset from the start of the table cycle and its phase width, played with
the lead's shape, gap and polarity and repeating every PULSe:PERiod (stim.segments); its query,
SOURce<n>:LIST:PULSe? [<first>[,<count>]], gives the pulses' onsets and widths, all of them or
count from pulse first (numbered from 1);
SOURce<n>:LIST[:STATe] ON|OFF plays the table or the regular pulses; SOURce<n>:LIST:COUNt?
is the number of pulses. A table is checked when it is loaded, as list mode would play it
(the lead plays on as it was until list mode is on), and again when list mode is turned on;
while it is on, every change is checked against the table. The safety limits apply to each
table pulse, with the spacing from its onset to the next (the last one's to the next cycle's
first pulse) as its period.
"""

import io

from stim import segments
from stim.errors import DATA_OUT_OF_RANGE, SETTINGS_CONFLICT, ScpiError
from stim.scpi import check_suffix, need_args
from stim.units import (
    format_fixed,
    keyword,
    parse_bool,
    parse_int,
    parse_number,
    special,
    to_units,
)

SYS_HZ = 125_000_000
_S = 125_000_000  # cycles per second
# Ranges in cycles: (min, max, default)
_WIDTH = (segments.MIN_WIDTH, 1 * _S, 25_000)
_GAP = (0, 1 * _S, 6_250)
_PERIOD = (1, 3600 * _S, 6_250_000)
_BURST_PERIOD = (0, 3600 * _S, 0)
_TRAIN = (0, 86_400 * _S, 0)
_DELAY = (0, 30 * _S, 0)
_BURST_COUNT = (1, 10_000, 1)
# Lead current: MCP4728 code (12 bits) at 1.5 uA per step: 2.048 V reference into 333.3 ohm.
CURRENT_NUM, CURRENT_DEN = 3, 2_000_000  # amperes per code = 3 / 2e6
CODE_MAX = 4095

_SHAPES = ("BIPHasic", "MONophasic")
_POLARITIES = ("NORMal", "INVerted")
_TRIG_SOURCES = ("IMMediate", "EXTernal", "BUS")
_TRIG_MODES = ("NORMal", "TOGGle", "GATed")


def parse_cycles(text, rng):
    """A time parameter (with MIN/MAX/DEF) in cycles within rng = (lo, hi, default)."""
    sp = special(text)
    if sp == "MIN":
        return rng[0]
    if sp == "MAX":
        return rng[1]
    if sp == "DEF":
        return rng[2]
    m, e = parse_number(text, "s")
    if m < 0:
        raise ScpiError(DATA_OUT_OF_RANGE, "negative time")
    c = to_units(m, e, SYS_HZ)
    if c < rng[0] or c > rng[1]:
        raise ScpiError(
            DATA_OUT_OF_RANGE,
            "%s..%s s" % (format_fixed(rng[0], SYS_HZ), format_fixed(rng[1], SYS_HZ)),
        )
    return c


def seconds(cycles):
    return format_fixed(cycles, SYS_HZ)


class SourceCommands:
    """Registers the lead commands on `parser`; `state` is the Instrument (leads, limits)."""

    def __init__(self, state, parser):
        self.st = state
        add = parser.add
        add("SOURce#:PULSe:WIDTh", self._width)
        add("SOURce#:PULSe:GAP", self._gap)
        add("SOURce#:PULSe:SHAPe", self._shape)
        add("SOURce#:PULSe:POLarity", self._polarity)
        add("SOURce#:PULSe:PERiod", self._period)
        add("SOURce#:PULSe:CYCLes", self._cycles)
        add("SOURce#:FREQuency", self._frequency)
        add("SOURce#:BURSt:COUNt", self._burst_count)
        add("SOURce#:BURSt:PERiod", self._burst_period)
        add("SOURce#:TRAin:DURation", self._train)
        add("SOURce#:DELay", self._delay)
        add("SOURce#:LIST:PULSe", self._list_pulse)
        add("SOURce#:LIST[:STATe]", self._list_state)
        add("SOURce#:LIST:COUNt", self._list_count)
        add("SOURce#:CURRent", self._current)
        add("OUTPut#[:STATe]", self._output)
        add("OUTPut:GLOBal[:STATe]", self._global)
        add("OUTPut:SYNC[:STATe]", self._sync_state)
        add("OUTPut:SYNC:SOURce", self._sync_source)
        add("OUTPut:SYNC:MODE", self._sync_mode)
        add("TRIGger:SOURce", self._trig_source)
        add("TRIGger:MODE", self._trig_mode)
        add("*TRG", self._trg)

    # ------------------------------------------------------------------ helpers

    def _lead(self, sfx):
        n = check_suffix(sfx[0], 1, len(self.st.leads))
        return self.st.leads[n - 1]

    def _change(self, lead, name, value):
        """Set one field if the whole combination stays playable (-221 otherwise)."""
        s = lead.settings.copy()
        setattr(s, name, value)
        c = s
        if name == "table" and not s.list_on:
            # A table loaded in the regular mode is checked as list mode will play it; the
            # lead plays on undisturbed.
            c = s.copy()
            c.list_on = 1
        why = segments.conflict(c)
        if why is not None:
            raise ScpiError(SETTINGS_CONFLICT, why)
        for v in segments.limit_views(c):  # each table pulse in list mode
            self.st.check_limits(lead, v, lead.current)
        if c is s:
            self.st.room_for(lead, s)
        lead.settings = s
        if c is s:
            self.st.settings_changed(lead)

    def _time(self, sfx, args, q, name, rng):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return seconds(getattr(lead.settings, name))
        need_args(args, 1)
        self._change(lead, name, parse_cycles(args[0], rng))

    # ------------------------------------------------------------------ SOURce<n>

    def _width(self, sfx, args, q):
        return self._time(sfx, args, q, "width", _WIDTH)

    def _gap(self, sfx, args, q):
        return self._time(sfx, args, q, "gap", _GAP)

    def _period(self, sfx, args, q):
        return self._time(sfx, args, q, "period", _PERIOD)

    def _burst_period(self, sfx, args, q):
        return self._time(sfx, args, q, "burst_period", _BURST_PERIOD)

    def _train(self, sfx, args, q):
        return self._time(sfx, args, q, "train", _TRAIN)

    def _delay(self, sfx, args, q):
        return self._time(sfx, args, q, "delay", _DELAY)

    def _frequency(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return format_fixed(SYS_HZ, lead.settings.period)
        need_args(args, 1)
        sp = special(args[0])
        if sp == "MIN":
            period = _PERIOD[1]
        elif sp == "MAX":
            period = self.st.min_period()
        elif sp == "DEF":
            period = _PERIOD[2]
        else:
            m, e = parse_number(args[0], "Hz")
            if m <= 0:
                raise ScpiError(DATA_OUT_OF_RANGE, "frequency must be positive")
            # period = SYS_HZ / (m * 10**e), rounded to the nearest cycle, in integers.
            if e >= 0:
                period = to_units(1, 0, SYS_HZ, m * 10**e)
            else:
                period = to_units(1, 0, SYS_HZ * 10 ** (-e), m)
            if period < _PERIOD[0] or period > _PERIOD[1]:
                raise ScpiError(DATA_OUT_OF_RANGE, "1/3600 Hz..")
        self._change(lead, "period", period)

    def _shape(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return "BIPH" if lead.settings.shape == segments.BIPH else "MON"
        need_args(args, 1)
        k = keyword(args[0], _SHAPES)
        self._change(lead, "shape", segments.BIPH if k == 0 else segments.MON)

    def _polarity(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return "INV" if lead.settings.polarity else "NORM"
        need_args(args, 1)
        self._change(lead, "polarity", keyword(args[0], _POLARITIES))

    def _burst_count(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return str(lead.settings.burst_count)
        need_args(args, 1)
        lo, hi, dflt = _BURST_COUNT
        self._change(lead, "burst_count", parse_int(args[0], lo, hi, dflt))

    def _cycles(self, sfx, args, q):
        lead = self._lead(sfx)
        if not q:
            raise ScpiError(-113, "query only")
        s = lead.settings
        return "%d,%d,%d" % (s.width, s.gap, s.period)

    def _current(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return format_fixed(lead.current * CURRENT_NUM, CURRENT_DEN)
        need_args(args, 1)
        sp = special(args[0])
        if sp == "MIN" or sp == "DEF":
            code = 0
        elif sp == "MAX":
            code = self.st.max_current_code(lead)
        else:
            m, e = parse_number(args[0], "A")
            if m < 0:
                raise ScpiError(DATA_OUT_OF_RANGE, "current is a magnitude")
            code = to_units(m, e, CURRENT_DEN, CURRENT_NUM)
            if code > CODE_MAX:
                raise ScpiError(DATA_OUT_OF_RANGE, "0..6.1425E-03 A")
        for v in segments.limit_views(lead.settings):
            self.st.check_limits(lead, v, code)
        self.st.set_current(lead, code)

    # ------------------------------------------------------------------ SOURce<n>:LIST

    def _list_pulse(self, sfx, args, q):
        """[APPend,]<onset>,<width>[,<onset>,<width>...]: the new table, or with APPend the
        present one followed by these pulses (a line holds 256 characters: a long table is
        sent in parts). The query takes an optional window, [<first pulse>[,<count>]] (from
        1): a whole 64-pulse table is a 1663-character reply, which a fragmented heap may
        not have room for."""
        lead = self._lead(sfx)
        t = lead.settings.table or ()
        if q:
            need_args(args, 0, 2)
            if args:  # a window (no copy of the table without one)
                i = parse_int(args[0], 1, segments.TABLE_MAX) - 1
                n = parse_int(args[1], 0, segments.TABLE_MAX) if len(args) > 1 else 64
                t = t[2 * i : 2 * (i + n)]
            # Written into one buffer (each value 12 characters and a comma): a list of 128
            # strings, or a buffer grown step by step, would fragment the heap.
            try:
                out = io.StringIO(13 * len(t))  # MicroPython: preallocated
            except TypeError:
                out = io.StringIO()  # CPython
            for i in range(len(t)):
                if i:
                    out.write(",")
                out.write(seconds(t[i]))
            return out.getvalue()
        if args and args[0].upper() in ("APP", "APPEND"):
            args = args[1:]
        else:
            t = ()
        if not args or len(args) % 2:
            raise ScpiError(-109)  # missing parameter: onset,width pairs
        new = [0] * len(args)
        for i in range(len(args)):
            # Onsets 0..3600 s (the burst period's range), widths as PULSe:WIDTh.
            new[i] = parse_cycles(args[i], _WIDTH if i % 2 else _BURST_PERIOD)
        self._change(lead, "table", tuple(t) + tuple(new))

    def _list_state(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return "1" if lead.settings.list_on else "0"
        need_args(args, 1)
        self._change(lead, "list_on", 1 if parse_bool(args[0]) else 0)

    def _list_count(self, sfx, args, q):
        if not q:
            raise ScpiError(-113, "query only")
        return str(len(self._lead(sfx).settings.table or ()) // 2)

    # ------------------------------------------------------------------ OUTPut, TRIGger

    def _output(self, sfx, args, q):
        lead = self._lead(sfx)
        if q:
            need_args(args, 0)
            return "1" if lead.enabled else "0"
        need_args(args, 1)
        self.st.set_lead_enabled(lead, parse_bool(args[0]))

    def _global(self, sfx, args, q):
        if q:
            need_args(args, 0)
            return "1" if self.st.global_on else "0"
        need_args(args, 1)
        self.st.set_global(parse_bool(args[0]))

    def _sync_state(self, sfx, args, q):
        if q:
            return "1" if self.st.sync_on else "0"
        need_args(args, 1)
        self.st.sync_on = parse_bool(args[0])

    def _sync_source(self, sfx, args, q):
        if q:
            return str(self.st.sync_source)
        need_args(args, 1)
        self.st.sync_source = parse_int(args[0], 1, len(self.st.leads))

    def _sync_mode(self, sfx, args, q):
        if q:
            return "PULS" if self.st.sync_every else "TRA"
        need_args(args, 1)
        self.st.sync_every = keyword(args[0], ("TRAin", "PULSe")) == 1

    def _trig_source(self, sfx, args, q):
        if q:
            return ("IMM", "EXT", "BUS")[self.st.trig_source]
        need_args(args, 1)
        src = keyword(args[0], _TRIG_SOURCES)
        if self.st.global_on:
            raise ScpiError(SETTINGS_CONFLICT, "turn the output off to change the trigger")
        self.st.trig_source = src

    def _trig_mode(self, sfx, args, q):
        if q:
            return ("NORM", "TOGG", "GAT")[self.st.trig_mode]
        need_args(args, 1)
        self.st.trig_mode = keyword(args[0], _TRIG_MODES)

    def _trg(self, sfx, args, q):
        need_args(args, 0)
        self.st.bus_trigger()
