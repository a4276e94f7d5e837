"""SCPI commands of the safety system: SYSTem:INTerlock, FAULt, HEARtbeat, LIMit, LOCK, SESSion,
LOG, RESet:CAUSe, the lead ramp (SOURce<n>:RAMP) and presets (*SAV, *RCL).

The state lives in the Instrument (`st`); these handlers only parse, check and delegate.
"""

import gc

from stim import safety
from stim.errors import DATA_OUT_OF_RANGE, ScpiError
from stim.heap import Spare
from stim.scpi import need_args, query_only
from stim.source_cmds import CURRENT_DEN, CURRENT_NUM, SYS_HZ, parse_cycles
from stim.units import format_fixed, parse_int, parse_number, parse_string, special, to_units

_RAMP = (0, 60 * SYS_HZ, 2 * SYS_HZ)
_HEARTBEAT = (0, 3600 * SYS_HZ, 0)
_SESSION = (0, 30 * 24 * 3600 * SYS_HZ, 0)


# The numeric limits: (unit, scale: stored = value * num / den rounded, lo..hi of the stored
# integer, the range shown in -222, the Limits attribute). A negative value is refused where
# the range starts at 0, even one that rounds to 0.
_CURRENT = ("A", CURRENT_DEN, CURRENT_NUM, 0, 4095, "0..6.1425E-03 A", "max_code")
_FREQUENCY = ("Hz", 1, 1, 1, 100_000, "1..100000 Hz", "max_freq_hz")
_SHANNON = (None, 100, 1, -300, 185, "-3.00..1.85", "shannon_k100")  # never above k = 1.85
_AREA = (None, 100_000_000, 1, 100, 100_000_000, "1E-06..1 cm2", "area_um2")
_CHARGE = ("C", 10**12, 1, 0, 10**8, "0..1E-04 C", "max_charge_pc")


class SystemCommands:
    def __init__(self, state, parser):
        self.st = state
        add = parser.add
        add("SYSTem:INTerlock", self._interlock)
        add("SYSTem:FAULt", self._fault)
        add("SYSTem:FAULt:CLEar", self._fault_clear)
        add("SYSTem:HEARtbeat", self._heartbeat)
        limit = self._limit_handler
        add("SYSTem:LIMit:CURRent", limit(_CURRENT))
        add("SYSTem:LIMit:FREQuency", limit(_FREQUENCY))
        add("SYSTem:LIMit:DUTY", self._lim_duty)
        add("SYSTem:LIMit:SHANnon", limit(_SHANNON))
        add("SYSTem:LIMit:AREA", limit(_AREA))
        add("SYSTem:LIMit:CHARge", limit(_CHARGE))
        add("SYSTem:LOCK", self._lock)
        add("SYSTem:UNLock", self._unlock)
        add("SYSTem:SESSion:LIMit", self._session_limit)
        add("SYSTem:SESSion:REMaining", self._session_remaining)
        add("SYSTem:SESSion:RESet", self._session_reset)
        add("SYSTem:LOG", self._log)
        add("SYSTem:RESet:CAUSe", self._reset_cause)
        add("SYSTem:MEMory:FREE", self._mem_free)
        add("SYSTem:MEMory:LARGest", self._mem_largest)
        add("SOURce#:RAMP", self._ramp)
        add("*SAV", self._sav)
        add("*RCL", self._rcl)

    # ------------------------------------------------------------------ status

    def _interlock(self, sfx, args, q):
        query_only(q)
        return "CLOS" if self.st.interlock_closed() else "OPEN"

    def _fault(self, sfx, args, q):
        query_only(q)
        codes = self.st.faults
        if not codes:
            return '0,"No fault"'
        return ",".join('%d,"%s"' % (c, safety.MESSAGES.get(c, "Fault")) for c in codes)

    def _fault_clear(self, sfx, args, q):
        need_args(args, 0)
        self.st.clear_faults()

    def _heartbeat(self, sfx, args, q):
        if q:
            return format_fixed(self.st.heartbeat.timeout_ms, 1000)
        need_args(args, 1)
        c = parse_cycles(args[0], _HEARTBEAT)
        self.st.heartbeat.set((c + 124_999) // 125_000, self.st.now)

    def _reset_cause(self, sfx, args, q):
        query_only(q)
        return self.st.reset_cause

    def _mem_free(self, sfx, args, q):
        query_only(q)
        gc.collect()
        return str(gc.mem_free())

    def _mem_largest(self, sfx, args, q):
        query_only(q)
        with Spare():  # what an operation that uses the reserve can have
            lo, hi = 0, gc.mem_free()  # the largest block found to fit, and a bound above
            while hi - lo > 16:
                mid = (lo + hi) // 2
                try:
                    bytearray(mid)
                    lo = mid
                except MemoryError:
                    hi = mid
        return str(lo)

    def _log(self, sfx, args, q):
        query_only(q)
        return self.st.log.pieces()  # in pieces: never one large block

    # ------------------------------------------------------------------ limits

    def _limit(self, q, args, getter, parse, apply):
        if q:
            return getter()
        need_args(args, 1)
        self.st.require_unlocked()
        value = parse(args[0])
        self.st.change_limits(apply, value)

    def _limit_handler(self, spec):
        return lambda sfx, args, q: self._lim_number(spec, args, q)

    def _lim_number(self, spec, args, q):
        unit, num, den, lo, hi, shown, attr = spec
        lim = self.st.limits

        def parse(text):
            m, e = parse_number(text, unit)
            v = to_units(m, e, num, den)
            if v < lo or v > hi or (m < 0 and lo >= 0):
                raise ScpiError(DATA_OUT_OF_RANGE, shown)
            return v

        return self._limit(
            q,
            args,
            lambda: format_fixed(getattr(lim, attr) * den, num),
            parse,
            lambda li, v: setattr(li, attr, v),
        )

    def _lim_duty(self, sfx, args, q):
        lim = self.st.limits
        return self._limit(
            q,
            args,
            lambda: str(lim.max_duty_pct),
            lambda t: parse_int(t, 1, 100),
            lambda li, v: setattr(li, "max_duty_pct", v),
        )

    # ------------------------------------------------------------------ instructor lock

    def _lock(self, sfx, args, q):
        if q:
            return "1" if self.st.lock.locked else "0"
        need_args(args, 1)
        with Spare():  # a hash, a file and a log entry
            self.st.do_lock(parse_string(args[0]))

    def _unlock(self, sfx, args, q):
        need_args(args, 1)
        with Spare():
            self.st.do_unlock(parse_string(args[0]))

    # ------------------------------------------------------------------ session

    def _session_limit(self, sfx, args, q):
        sess = self.st.session
        if q:
            return format_fixed(sess.limit_ms, 1000)
        need_args(args, 1)
        self.st.require_unlocked()
        c = parse_cycles(args[0], _SESSION)
        sess.limit_ms = (c + 124_999) // 125_000
        self.st.save_session()

    def _session_remaining(self, sfx, args, q):
        query_only(q)
        left = self.st.session.remaining_ms()
        return "9.9E+37" if left is None else format_fixed(left, 1000)

    def _session_reset(self, sfx, args, q):
        need_args(args, 0)
        self.st.require_unlocked()
        self.st.session.used_ms = 0
        self.st.save_session()
        self.st.clear_fault(safety.SESSION_OVER)

    # ------------------------------------------------------------------ ramp, presets

    def _ramp(self, sfx, args, q):
        lead = self.st.lead(sfx[0])
        ramp = self.st.ramps[lead.index]
        if q:
            return format_fixed(ramp.ramp_ms, 1000)
        need_args(args, 1)
        sp = special(args[0])
        c = parse_cycles(args[0], _RAMP) if sp is None else parse_cycles(sp, _RAMP)
        ramp.ramp_ms = (c + 124_999) // 125_000

    def _sav(self, sfx, args, q):
        need_args(args, 1)
        with Spare():  # the preset's JSON and its file
            self.st.save_preset(parse_int(args[0], 0, 9))

    def _rcl(self, sfx, args, q):
        need_args(args, 1)
        with Spare():
            self.st.recall_preset(parse_int(args[0], 0, 9))
