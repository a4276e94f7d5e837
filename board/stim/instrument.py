"""PicoStim's SCPI instrument: the command set and the state behind it.

`execute(line, now)` runs one received line and returns the reply line or None; `service(now)`
is called on every pass of the main loop. Time is passed in (ticks_ms), never read here.
"""

from stim import MODEL, VERSION
from stim.errors import ErrorQueue
from stim.scpi import Parser, need_args, no_query, query_only


class Instrument:
    def __init__(self, hw):
        self.hw = hw
        self.errors = ErrorQueue(16)
        self.parser = Parser(self.errors)
        self.ese = 0
        self.sre = 0
        self._register()

    def boot(self, now):
        self.hw.rest()

    def execute(self, line, now):
        replies = self.parser.execute(line)
        return replies[0] if replies else None

    def service(self, now):
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
        self.hw.rest()

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
