"""The board measures its own outputs: a lead's phase width, interphase gap and period, exact
in 125 MHz cycles, read from the pads by two state machines on PIO1 (`stim.measure_program`);
and the *TST? self-test. `stim.measure_cmds` imports this module for each query or *TST? and
drops it after, so it costs no heap between measurements.

A measurement never disturbs a lead: PIO1 SM1 and SM2 only read pads. It takes two passes of
both machines, each on the first pulse they catch:

* A, counting on the phase-1 pin (pin A, or B with inverted polarity): the width (its rise to
  its fall) and the period (its rise to the next one);
* B, counting on the phase-2 pin: its rise after the phase-1 rise, less pass A's width, is the
  gap. A monophasic lead has no gap: 0, and no pass B.

Where counting starts: each count begins `_tol(h)` cycles (an eighth of the interval h the
settings give, at most 1024, plus 8) before the edge is due, and has samples for as long after
it. So the counting loops stay short (the virtual board executes every instruction); the
settings only place the windows, the values come from the samples: an edge before its window
shows no sample of the level before it, an edge after it uses up the sample budget, and either
way the pass is repeated on a later pulse; after the deadline that is -230 "Data corrupt or
stale" (so is no whole pulse at all).
In a burst a pass may catch the burst's last pulse, whose next rise is a burst pause away, not
a period: it is repeated, and the period reported is the one inside a burst. A lead in list
mode is not measured (-221): its pulses differ.

What the windows cannot see: the machines do not watch the pins while they wait for a window
(a loop that counts and watches is what the virtual board cannot run in real time), so a pulse
that comes and goes entirely inside that wait is missed. An output whose edges are off by more
than the window is an error, not a value; but one with extra pulses, e.g. at twice the set
rate, could show its next rise inside the period's window and read as the setting.

A measurement blocks the main loop (the watchdog bites after 1 s), so it is bounded: at most
_BUDGET_MS, and a lead is refused (-221 "period too long to measure") unless two periods (its
burst period with bursts) per pass fit in two thirds of that: up to about 0.1 s, or 0.2 s for
WIDTh?, PERiod? and monophasic leads (one pass).
"""

import time

from stim import segments
from stim.errors import SETTINGS_CONFLICT, ScpiError
from stim.lead import NoRoom
from stim.measure_program import measure_program, pattern_program
from stim.safety import ticks_add, ticks_diff
from stim.scpi import need_args, query_only
from stim.units import format_fixed

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

# The numbers of stim.measure_program (see its cycle budget).
HI_FIXED = const(2)  # cycles from R to the first high test, besides D
LO_FIXED = const(4)  # from the test that ends the first count to the next one, besides D2
MARK = 0xFFFFFFFF  # pushed when the sample budget ran out (too big for a Pico small int)
# The test signal of pattern_program: high PATTERN_WIDTH cycles of every PATTERN_PERIOD.
PATTERN_WIDTH = const(12_345)
PATTERN_PERIOD = const(125_001)

DATA_STALE = const(-230)  # "Data corrupt or stale" (stim.measure_cmds defines the message)

_PIO1_CTRL = const(0x50300000)
_SET = const(0x2000)
_CLR = const(0x3000)
_SM = const(5)  # PIO1 SM1; its partner is SM2
_MASK = const(0b0110)  # PIO1 SM1 and SM2 in CTRL
_SYNC_SM = const(4)  # PIO1 SM0: the sync output's machine; plays the test pattern in *TST?
# Encoded instructions the CPU runs through exec (no assembler at run time).
_PULL = const(0x80A0)  # pull(block)
_MOV_X_OSR = const(0xA027)
_MOV_Y_OSR = const(0xA047)
_MOV_ISR_OSR = const(0xA0C7)
_SET_PINS_LOW = const(0xE000)  # set(pins, 0)
_BUDGET_MS = const(600)
_CYCLES_MS = const(125_000)

# *TST? result bits (0: every check passed).
TST_LEAD = const(1)  # << lead index: its state machine refused its program or DMA fed nothing
TST_MEASURE = const(16)  # the known pattern on the sync output was not measured exactly
TST_DAC = const(32)  # the DAC answered at power-up but does not now
_FLIGHT_MS = const(4000)  # a pulse ends this soon after its stop at the latest (2 s + 1 s + 1)
_FLIGHT_WAIT_MS = const(300)  # *TST? waits this long at most for such a pulse to end


def _tol(h):
    return min(h >> 3, 1024) + 8


def window(h, first):
    """(delay, samples) for a count whose edge is due `h` cycles after its reference and whose
    first sample comes `first` + delay cycles after it: from h - _tol(h) to h + _tol(h)."""
    t = _tol(h)
    d = h - t - first
    if d < 0:
        d = 0
    return d, (h + t - first - d + 1) // 2 + 1


def counts(budget, got):
    """[(k, j), (k, j)]: each machine's samples of the level before the edge in its first and
    second count, from its pushed words [Y0 - k, Y0 - k - j]; None if a budget ran out."""
    out = []
    for words in got:
        if MARK in words:
            return None
        out.append((budget - words[0], words[0] - words[1]))
    return out


def edges(ks, d1, d2, timed=True):
    """(t1, t2): the cycles from R to the edges that ended the first and the second count of
    a pass whose machines counted `ks` (see `counts`), or None if they do not time them.

    A machine's count ends at the first of its samples, 2 cycles apart, that sees the new
    level; the two machines sample on alternate cycles, so of their two ends one is the edge
    and the other the cycle after it, provided both counts began by the edge: the count that
    began first saw the old level at least once. For pass B (`timed` False) the first count
    must end at once instead: the phase-2 pin is low as phase 1 begins."""
    e = [HI_FIXED + d1 + i + 2 * ks[i][0] for i in (0, 1)]
    if timed:
        if not ks[0][0] or abs(e[0] - e[1]) != 1:
            return None
    elif ks[0][0] or ks[1][0]:
        return None
    first = 0 if e[0] < e[1] else 1  # whose second count began first
    e2 = [e[i] + LO_FIXED + d2 + 2 * ks[i][1] for i in (0, 1)]
    if not ks[first][1] or abs(e2[0] - e2[1]) != 1:
        return None
    return min(e), min(e2)


class Meter:
    """Times pins with PIO1 SM1 and SM2. `clock` has ticks_ms() and sleep_ms(ms)."""

    def __init__(self, rp2, mem32, clock=time):
        self.rp2 = rp2
        self.mem32 = mem32
        self.clock = clock

    def _load(self, sm, mov, value):
        sm.put(value)
        sm.exec(_PULL)
        if mov:
            sm.exec(mov)

    def run(self, pin1, jmp_pin, d1, d2, budget, deadline):
        """One pass (see stim.measure_program): the machines' counts (see `counts`), None if a
        budget ran out, or False if they have not both finished by `deadline` (ticks_ms)."""
        sms = []
        for i in (0, 1):
            sm = self.rp2.StateMachine(
                _SM + i, measure_program, freq=125_000_000, in_base=pin1, jmp_pin=jmp_pin
            )
            self._load(sm, _MOV_X_OSR, d1 + i)  # SM2 samples one cycle later
            self._load(sm, _MOV_Y_OSR, budget)
            self._load(sm, 0, d2)
            sms.append(sm)
        got = [[], []]  # type: list[list[int]]
        self.mem32[_PIO1_CTRL | _SET] = (_MASK << 8) | _MASK  # both start in the same cycle
        try:
            while True:
                done = True
                for sm, words in zip(sms, got):
                    while len(words) < 2 and MARK not in words and sm.rx_fifo():
                        words.append(sm.get())
                    done = done and (len(words) == 2 or MARK in words)
                if done:
                    return counts(budget, got)
                if ticks_diff(self.clock.ticks_ms(), deadline) >= 0:
                    return False
                self.clock.sleep_ms(1)
        finally:
            self.mem32[_PIO1_CTRL | _CLR] = _MASK

    def pins(self, pin1, pin2, width, gap, period, spacing):
        """(width, gap, period) in cycles of pulses on pin1 (phase 1) and pin2 (phase 2, None:
        no gap), expected as the arguments say, with `spacing` the longest rise to rise."""
        passes = 1 if pin2 is None else 2
        if passes * (2 * spacing + 2 * width + gap) > _BUDGET_MS * _CYCLES_MS * 2 // 3:
            raise ScpiError(SETTINGS_CONFLICT, "period too long to measure")
        deadline = ticks_add(self.clock.ticks_ms(), _BUDGET_MS)
        d1, b1 = window(width, HI_FIXED)
        d2, b2 = window(period - width, LO_FIXED)
        seen = False  # a pass that saw whole pulses, if only outside its windows
        while True:
            r = self.run(pin1, pin1, d1, d2, b1 + b2, deadline)
            seen = seen or r is not False
            t = edges(r, d1, d2) if r else None
            if t:
                w, p = t
                break
            self._check(deadline, seen)
        if pin2 is None:
            return w, 0, p
        # Pass B: its first count ends at once (the phase-2 pin is low when phase 1 begins), so
        # its second count times the phase-2 rise from R + HI_FIXED.
        db, bb = window(width + gap - HI_FIXED, LO_FIXED)
        while True:
            r = self.run(pin1, pin2, 0, db, bb, deadline)
            seen = seen or r is not False
            t = edges(r, 0, db, False) if r else None
            if t and t[1] >= w:
                return w, t[1] - w, p
            self._check(deadline, seen)

    def _check(self, deadline, seen):
        if ticks_diff(self.clock.ticks_ms(), deadline) >= 0:
            if seen:
                raise ScpiError(DATA_STALE, "edges not within the counting windows")
            raise ScpiError(DATA_STALE, "no complete pulse within %d ms" % _BUDGET_MS)

    def lead(self, lead, gap=True):
        """(width, gap, period) in cycles of a running lead (gap 0 unless `gap` and biphasic)."""
        s = lead.settings
        if getattr(s, "list_on", 0):
            raise ScpiError(SETTINGS_CONFLICT, "not measured in list mode")
        spacing = s.burst_period if s.burst_count > 1 else s.period
        pin1 = lead.pin_a + s.polarity
        pin2 = lead.pin_a + 1 - s.polarity if gap and s.shape == segments.BIPH else None
        return self.pins(pin1, pin2, s.width, s.gap, s.period, spacing)


def query(inst, sfx, args, q, what):
    """The handlers of stim.measure_cmds: MEASure<n>:WIDTh?, GAP?, PERiod? (what 0, 1, 2:
    seconds, NR3) and CYCLes? (3: "width,gap,period" in cycles)."""
    query_only(q)
    need_args(args, 0)
    lead = inst.lead(sfx[0])
    if not (inst.global_on and lead.running):
        raise ScpiError(SETTINGS_CONFLICT, "lead not running")
    eng = inst.hw.engine
    r = Meter(eng.rp2, eng.mem32).lead(lead, what == 1 or what == 3)
    if what == 3:
        return "%d,%d,%d" % r
    return format_fixed(r[what], 125_000_000)


# ---------------------------------------------------------------------- *TST?


def _lead_ok(lead, clock):
    """The lead's state machine takes its program and its DMA fills the TX FIFO, with a record
    of the default settings; the machine is never enabled, so its pins stay at rest."""
    saved = lead.settings
    lead.settings = segments.Settings()  # a small known record, whatever the lead is set to
    try:
        lead.prepare()
        clock.sleep_ms(1)
        return lead.sm.tx_fifo() == 8 and not lead.sm.active()  # joined TX FIFO: 8 deep
    except (OSError, ValueError, RuntimeError, NoRoom):
        return False
    finally:
        lead.stop_now()
        lead.settings = saved


def self_test(inst, clock=time):
    """*TST?: 0 if every check passes, else the sum of TST_LEAD << lead index, TST_MEASURE and
    TST_DAC for the ones that failed. Only with the outputs off (-221), after any pulse still
    in flight has ended: no lead pulses, only the sync output (a scope trigger) plays the test
    signal the measurement must time exactly. Everything is left at rest (hw.rest()). A DAC
    that never answered is not a failure (logic-level use)."""
    if inst.global_on:
        raise ScpiError(SETTINGS_CONFLICT, "turn the outputs off first")
    hw = inst.hw
    # A pulse that was in flight when the outputs went off ends first (stim.amplitude).
    now = clock.ticks_ms()
    wait = 0
    for amp in inst.amps:
        at = getattr(amp, "_zero_at", None)
        if at is not None:
            left = ticks_diff(at, now)
            if wait < left < _FLIGHT_MS:
                wait = left
    if wait > _FLIGHT_WAIT_MS:
        raise ScpiError(SETTINGS_CONFLICT, "a pulse is still in flight")
    if wait:
        clock.sleep_ms(wait + 1)
    hw.rest()  # every lead stopped: each ring back in the pool for the test record
    bits = 0
    for lead in hw.leads:
        if not _lead_ok(lead, clock):
            bits |= TST_LEAD << lead.index
    hw.rest()
    rp2 = hw.engine.rp2
    meter = Meter(rp2, hw.engine.mem32, clock)
    sync = hw.engine.sync_pin
    pat = rp2.StateMachine(_SYNC_SM, pattern_program, freq=125_000_000, set_base=sync)
    meter._load(pat, _MOV_Y_OSR, PATTERN_WIDTH - 3)
    meter._load(pat, _MOV_ISR_OSR, PATTERN_PERIOD - PATTERN_WIDTH - 6)
    pat.active(1)
    try:
        got = meter.pins(sync, None, PATTERN_WIDTH, 0, PATTERN_PERIOD, PATTERN_PERIOD)
        if got != (PATTERN_WIDTH, 0, PATTERN_PERIOD):
            bits |= TST_MEASURE
    except ScpiError:
        bits |= TST_MEASURE
    finally:
        pat.put(0)  # stop at the end of this period: the sync pin low, every pulse whole
        clock.sleep_ms(PATTERN_PERIOD // _CYCLES_MS + 2)
        pat.active(0)
        pat.exec(_SET_PINS_LOW)
        hw.rest()
    dac = hw.dac
    if dac.present:
        try:
            if dac.addr not in dac.i2c.scan():
                bits |= TST_DAC
        except OSError:
            bits |= TST_DAC
    return bits
