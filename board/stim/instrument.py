"""PicoStim's SCPI instrument: the command set and the state behind it.

`execute(line, now)` runs one received line and returns the reply line or None; `service(now)`
is called on every pass of the main loop. Time is passed in (ticks_ms), never read here.
"""

import time

from stim import MODEL, VERSION, limits, segments
from stim.errors import ErrorQueue
from stim.scpi import Parser, need_args, no_query, query_only
from stim.source_cmds import SourceCommands

_RESTART_MARGIN_MS = 2  # after disarming, wait this much past the longest pulse in flight


class Instrument:
    def __init__(self, hw):
        self.hw = hw
        self.leads = hw.leads
        self.errors = ErrorQueue(16)
        self.parser = Parser(self.errors)
        self.ese = 0
        self.sre = 0
        self.limits = limits.Limits()
        self.global_on = False
        self.trig_source = 0
        self.trig_mode = 0
        self._restart_at = None  # ticks_ms when leads changed while running restart
        self._restart = []
        self._register()
        SourceCommands(self, self.parser)

    def boot(self, now):
        self.hw.rest()

    def execute(self, line, now):
        self._now = now
        replies = self.parser.execute(line)
        return replies[0] if replies else None

    def service(self, now):
        if self._restart_at is not None and time.ticks_diff(now, self._restart_at) >= 0:
            leads = [ld for ld in self._restart if self._should_run(ld)]
            self._restart = []
            self._restart_at = None
            self.hw.engine.start(leads)

    # ------------------------------------------------------------------ state

    def reset_state(self):
        """*RST: outputs off and at rest, every setting to its default."""
        self.hw.rest()
        self.global_on = False
        self.trig_source = 0
        self.trig_mode = 0
        self._restart = []
        self._restart_at = None
        for lead in self.leads:
            lead.settings = segments.Settings()
            lead.enabled = False
            lead.current = 0

    def _should_run(self, lead):
        return self.global_on and lead.enabled

    def check_limits(self, lead, settings, code):
        limits.check(self.limits, settings, code)

    def min_period(self):
        return limits.min_period(self.limits)

    def max_current_code(self, lead):
        return self.limits.max_code

    def set_current(self, lead, code):
        lead.current = code
        self.hw.dac.set(lead.index, code)

    def settings_changed(self, lead):
        """A running lead finishes its pulse in flight, then restarts with the new settings."""
        if lead.running:
            self.hw.engine.disarm([lead])
            self._schedule_restart(lead)

    def _schedule_restart(self, lead):
        if lead not in self._restart:
            self._restart.append(lead)
        wait = _RESTART_MARGIN_MS + segments.pulse_cycles(lead.settings) // 125_000 + 1
        now = getattr(self, "_now", time.ticks_ms())
        at = time.ticks_add(now, wait)
        if self._restart_at is None or time.ticks_diff(at, self._restart_at) > 0:
            self._restart_at = at

    def set_lead_enabled(self, lead, on):
        lead.enabled = on
        if not self.global_on:
            return
        if on and not lead.running:
            self.hw.engine.start([lead])
        elif not on and lead.running:
            self.hw.engine.disarm([lead])

    def set_global(self, on):
        if on == self.global_on:
            return
        self.global_on = on
        if on:
            self.hw.engine.start([ld for ld in self.leads if ld.enabled])
        else:
            self.hw.engine.disarm([ld for ld in self.leads if ld.running])
            self._restart = []
            self._restart_at = None

    def bus_trigger(self):
        pass

    # ------------------------------------------------------------------ commands

    def _register(self):
        add = self.parser.add
        add("*IDN", self._idn)
        add("*RST", self._rst)
        add("*CLS", self._cls)
        add("*OPC", self._opc)
        add("*ESR", self._esr)
        add("*ESE", self._ese)
        add("*SRE", self._sre)
        add("*STB", self._stb)
        add("*TST", self._tst)
        add("*WAI", self._wai)
        add("SYSTem:ERRor[:NEXT]", self._err_next)
        add("SYSTem:ERRor:COUNt", self._err_count)
        add("SYSTem:ERRor:ALL", self._err_all)
        add("SYSTem:VERSion", self._version)

    def _idn(self, sfx, args, q):
        query_only(q)
        need_args(args, 0)
        return "PicoStim,%s,%s,%s" % (MODEL, self.hw.uid(), VERSION)

    def _rst(self, sfx, args, q):
        no_query(q)
        need_args(args, 0)
        self.reset_state()

    def _cls(self, sfx, args, q):
        no_query(q)
        need_args(args, 0)
        self.errors.clear()
        self.errors.read_esr()

    def _opc(self, sfx, args, q):
        need_args(args, 0)
        if q:
            return "1"
        self.errors.set_opc()

    def _esr(self, sfx, args, q):
        query_only(q)
        need_args(args, 0)
        return str(self.errors.read_esr())

    def _ese(self, sfx, args, q):
        from stim.units import parse_int

        if q:
            need_args(args, 0)
            return str(self.ese)
        need_args(args, 1)
        self.ese = parse_int(args[0], 0, 255)

    def _sre(self, sfx, args, q):
        from stim.units import parse_int

        if q:
            need_args(args, 0)
            return str(self.sre)
        need_args(args, 1)
        self.sre = parse_int(args[0], 0, 255)

    def _stb(self, sfx, args, q):
        query_only(q)
        need_args(args, 0)
        stb = 0
        if self.errors.count():
            stb |= 0x04  # error/event queue not empty
        if self.errors.esr & self.ese:
            stb |= 0x20
        return str(stb)

    def _tst(self, sfx, args, q):
        query_only(q)
        need_args(args, 0)
        return str(self.self_test())

    def self_test(self):
        return 0

    def _wai(self, sfx, args, q):
        no_query(q)
        need_args(args, 0)

    def _err_next(self, sfx, args, q):
        query_only(q)
        need_args(args, 0)
        return self.errors.pop()

    def _err_count(self, sfx, args, q):
        query_only(q)
        return str(self.errors.count())

    def _err_all(self, sfx, args, q):
        query_only(q)
        return self.errors.all()

    def _version(self, sfx, args, q):
        query_only(q)
        return "1999.0"
