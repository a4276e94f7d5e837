"""IEEE 488.2 common commands (*IDN?, *RST, *CLS, *OPC, *ESR?, ...) and SYSTem:ERRor."""

from stim import MODEL, VERSION
from stim.scpi import need_args, no_query, query_only
from stim.units import parse_int


class CommonCommands:
    def __init__(self, state, parser):
        self.st = state
        self.errors = state.errors
        self.ese = 0
        self.sre = 0
        add = parser.add
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
        return "PicoStim,%s,%s,%s" % (MODEL, self.st.hw.uid(), VERSION)

    def _rst(self, sfx, args, q):
        no_query(q)
        need_args(args, 0)
        self.st.reset_state()

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
        if q:
            need_args(args, 0)
            return str(self.ese)
        need_args(args, 1)
        self.ese = parse_int(args[0], 0, 255)

    def _sre(self, sfx, args, q):
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
        return str(self.st.self_test())

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
        return self.errors.take_all()  # in pieces: never one large block

    def _version(self, sfx, args, q):
        query_only(q)
        return "1999.0"
