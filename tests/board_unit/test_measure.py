"""The self-measurement (stim.measure, stim.measure_program) on the cycle-exact PIO executor.

The measurement program runs in the executor, two copies as on PIO1, against pulse trains that
are either synthetic or played by the lead program itself, and `stim.measure`'s own code drives
them through a bench that stands for the rp2 module, PIO1's CTRL register and the clock. Every
assertion is exact, in 125 MHz cycles.
"""

from __future__ import annotations

import importlib
import sys
import types
from bisect import bisect_right
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stim import segments as sg
from stim.errors import ScpiError

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "host"
MP_DIR = HOST / "picostim" / "sim" / "mp"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))

from picostim.pio import ConstantInputs, DmaFeed, StateMachine, StepInputs  # noqa: E402


def _import_rp2_asm():
    if "rp2_asm" in sys.modules:
        return sys.modules["rp2_asm"]
    sys.path.insert(0, str(MP_DIR))
    try:
        return importlib.import_module("rp2_asm")
    finally:
        sys.path.remove(str(MP_DIR))


rp2_asm = _import_rp2_asm()


def _import_firmware():
    """stim.measure_program, stim.measure and the lead and sync programs, assembled by the
    simulated board's assembler; sys.modules is left as it was found."""
    import stim

    fake = types.ModuleType("rp2")
    fake.asm_pio = rp2_asm.asm_pio  # type: ignore[attr-defined]
    fake.PIO = rp2_asm.PIOConst  # type: ignore[attr-defined]
    names = (
        "rp2",
        "stim.measure_program",
        "stim.measure",
        "stim.pulse_program",
        "stim.sync_program",
    )
    saved = {name: sys.modules.get(name) for name in names}
    saved_attrs = {n: stim.__dict__.get(n) for n in (m[5:] for m in names[1:])}
    sys.modules["rp2"] = fake
    for name in names[1:]:
        sys.modules.pop(name, None)
    try:
        return tuple(importlib.import_module(name) for name in names[1:])
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for n, v in saved_attrs.items():
            if v is None:
                stim.__dict__.pop(n, None)
            else:
                setattr(stim, n, v)


MP, ME, PP, SP = _import_firmware()
CYCLES_MS = 125_000
PIN_A, PIN_B, ARM, INTERLOCK, SYNC = 2, 3, 11, 16, 10
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- inputs


class Train:
    """A lead's two pins playing a pulse train for ever, from cycle t0 (InputTimeline).

    `starts` are the phase-1 starts within one repeat of `repeat` cycles; each pulse is
    phase 1 (`width`) on pin1, `gap`, then phase 2 (`width2`, default `width`) on pin2 (if
    any). Other pins read as `other` gives them."""

    def __init__(self, pin1, pin2, width, gap, starts, repeat, t0=0, width2=None, other=None):
        self.pin1, self.pin2, self.repeat, self.t0 = pin1, pin2, repeat, t0
        edges = []
        for s in starts:
            edges += [(s, pin1, 1), (s + width, pin1, 0)]
            if pin2 is not None:
                r = s + width + gap
                edges += [(r, pin2, 1), (r + (width if width2 is None else width2), pin2, 0)]
        edges.sort()
        assert edges[-1][0] < repeat
        self.edges = edges
        self.offsets = [e[0] for e in edges]
        self.other = other or ConstantInputs()

    def level(self, pin, cycle):
        if pin not in (self.pin1, self.pin2):
            return self.other.level(pin, cycle)
        if cycle < self.t0:
            return 0
        c = (cycle - self.t0) % self.repeat
        level = 0
        for off, p, lev in self.edges:
            if off > c:
                break
            if p == pin:
                level = lev
        return level

    def next_change(self, cycle):
        if cycle < self.t0:
            return self.t0 + self.offsets[0]
        base = cycle - (cycle - self.t0) % self.repeat
        i = bisect_right(self.offsets, cycle - base)
        if i < len(self.offsets):
            return base + self.offsets[i]
        return base + self.repeat + self.offsets[0]


class Live:
    """Inputs made of `base` plus the pin edges of the bench's driving state machines."""

    def __init__(self, base):
        self.base = base
        self.cycles: dict[int, list[int]] = {}
        self.levels: dict[int, list[int]] = {}
        self.changes: list[int] = []

    def add(self, cycle, pin, level):
        self.cycles.setdefault(pin, []).append(cycle)
        self.levels.setdefault(pin, []).append(level)
        self.changes.append(cycle)

    def level(self, pin, cycle):
        cyc = self.cycles.get(pin)
        if cyc:
            i = bisect_right(cyc, cycle) - 1
            if i >= 0:
                return self.levels[pin][i]
            return 0
        return self.base.level(pin, cycle)

    def next_change(self, cycle):
        i = bisect_right(self.changes, cycle)
        mine = self.changes[i] if i < len(self.changes) else None
        theirs = self.base.next_change(cycle)
        if mine is None:
            return theirs
        return mine if theirs is None else min(mine, theirs)


# --------------------------------------------------------------------------- the bench


class BenchSM:
    """What stim.measure uses of rp2.StateMachine, over an executor state machine."""

    def __init__(self, bench, sm):
        self.bench = bench
        self.sm = sm

    def put(self, value):
        assert self.sm.put(value), "TX FIFO full"

    def exec(self, instr):
        assert isinstance(instr, int)
        self.sm.exec(instr)

    def rx_fifo(self):
        return len(self.sm.rx)

    def get(self):
        value = self.sm.get()
        assert value is not None, "get() on an empty RX FIFO blocks for ever"
        return value

    def active(self, on=None):
        if on is None:
            return self.sm.enabled
        self.sm.set_enabled(bool(on))
        return None


class Bench:
    """Stands for the rp2 module, machine.mem32 and the clock (ticks_ms, sleep_ms).

    State machines run in index order, PIO0 before PIO1 as on the virtual board, and the pin
    writes of every machine are inputs to the later ones. `drivers` are extra executor
    machines (e.g. a lead playing its program) that run first."""

    def __init__(self, inputs=None, drivers=(), broken=False):
        self.inputs = Live(inputs or ConstantInputs())
        self.now = 0
        self.mem = [[0] * 32, [0] * 32]
        self.free = [32, 32]
        self.offsets: dict[tuple[int, int], int] = {}
        self.sms: dict[int, StateMachine] = {}
        self.drivers = list(drivers)
        self.broken = broken  # pin writes of PIO1 machines never reach the pads
        self.writes: list[tuple[int, int]] = []

    # rp2
    def StateMachine(  # noqa: N802 (rp2's name)
        self, sm_id, prog, freq=125_000_000, in_base=None, jmp_pin=None, set_base=None
    ):
        assert freq == 125_000_000
        block = sm_id // 4
        off = self._load(block, prog)
        execctrl = prog[-5]
        top = (execctrl >> 12 & 31) + off
        bottom = (execctrl >> 7 & 31) + off
        execctrl = execctrl & ~(31 << 12 | 31 << 7) | top << 12 | bottom << 7
        if jmp_pin is not None:
            execctrl |= jmp_pin << 24
        pinctrl = 0
        if in_base is not None:
            pinctrl |= in_base << 15
        if set_base is not None:
            pinctrl |= 1 << 26 | set_base << 5
        sm = StateMachine(
            self.mem[block],
            execctrl=execctrl,
            shiftctrl=prog[-4],
            pinctrl=pinctrl,
            inputs=self.inputs,
            pc=off,
            sm_index=sm_id % 4,
        )
        sm.cycle = self.now
        if set_base is not None:
            sm.pin_dirs |= 1 << set_base
        self.sms[sm_id] = sm
        return BenchSM(self, sm)

    def _load(self, block, prog):
        key = (block, id(prog))
        if key not in self.offsets:
            words = list(prog[0])
            off = self.free[block] - len(words)
            assert off >= 0
            for i, w in enumerate(words):
                self.mem[block][off + i] = w + off if w & 0xE000 == 0 else w
            self.free[block] = off
            self.offsets[key] = off
        return self.offsets[key]

    # machine.mem32 (PIO1 CTRL through its SET and CLR aliases)
    def __setitem__(self, addr, value):
        self.writes.append((addr, value))
        assert addr & ~0x3000 == 0x50300000 and addr & 0x3000 in (0x2000, 0x3000)
        for k in range(4):
            sm = self.sms.get(4 + k)
            if sm is not None and value >> k & 1:
                sm.set_enabled(addr & 0x3000 == 0x2000)
                if addr & 0x3000 == 0x2000 and value >> (k + 8) & 1:
                    sm.clkdiv_restart()

    # the clock
    def ticks_ms(self):
        return self.now // CYCLES_MS

    def sleep_ms(self, ms):
        self.run_to(self.now + ms * CYCLES_MS)

    def run_to(self, cycle):
        for sm in self.drivers + [self.sms[k] for k in sorted(self.sms)]:
            sm.run_until(cycle)
            is_pio1 = sm not in self.drivers and any(self.sms.get(k) is sm for k in range(4, 8))
            for c, pin, level in sm.edges:
                if not (self.broken and is_pio1):
                    self.inputs.add(c, pin, level)
            sm.edges.clear()
        self.now = cycle


def meter(bench):
    return ME.Meter(bench, bench, bench)


def two(bench, pin1, jmp_pin, d1, d2, budget, until_ms=600):
    """One pass of stim.measure's own `run`: [(k, j), (k, j)], None or False."""
    return meter(bench).run(pin1, jmp_pin, d1, d2, budget, bench.ticks_ms() + until_ms)


# --------------------------------------------------------------------------- the program


PIOASM_TEXT = """
.program measure
    wait 0 pin 0
    wait 1 pin 0
delay1:
    jmp x-- delay1
high:
    jmp pin count1
    in y, 32
    mov x, osr
delay2:
    jmp x-- delay2
low:
    jmp pin done
    jmp y-- low
.wrap_target
done:
    in y, 32
park:
    jmp park
count1:
    jmp y-- high
.wrap
"""


def test_program_matches_pioasm_text():
    adafruit_pioasm = pytest.importorskip("adafruit_pioasm")
    reference = adafruit_pioasm.Program(PIOASM_TEXT)
    prog = MP.measure_program
    assert list(prog[0]) == list(reference.assembled)
    execctrl, shiftctrl = prog[-5], prog[-4]
    assert execctrl >> 12 & 31 == reference.pio_kwargs["wrap"] == 11
    assert execctrl >> 7 & 31 == reference.pio_kwargs["wrap_target"] == 9
    assert shiftctrl >> 16 & 1 == 1  # autopush: `in y, 32` pushes
    assert shiftctrl >> 20 & 31 == 0  # ... at 32 bits
    assert shiftctrl >> 30 == 0  # FIFOs not joined: 4 words each way
    assert prog[-3] is None and prog[-2] is None and prog[-1] is None  # drives no pin


def test_programs_fit_pio1_with_the_sync_program():
    words = len(MP.measure_program[0]) + len(MP.pattern_program[0]) + len(SP.sync_program[0])
    assert words <= 32


def test_exec_encodings():
    enc = rp2_asm.asm_pio_encode
    assert ME._PULL == enc("pull(block)", 0)
    assert ME._MOV_X_OSR == enc("mov(x, osr)", 0)
    assert ME._MOV_Y_OSR == enc("mov(y, osr)", 0)
    assert ME._SET_PINS_LOW == enc("set(pins, 0)", 0)
    assert ME._MOV_ISR_OSR == enc("mov(isr, osr)", 0)


def test_cycle_budget():
    """The schedule in stim.measure_program's docstring, cycle by cycle, on one machine."""
    R, F, E = 100, 100 + 57, 100 + 57 + 40
    inputs = StepInputs([(R, PIN_A, 1), (F, PIN_A, 0), (E, PIN_A, 1)])
    bench = Bench(inputs)
    sm = bench.StateMachine(5, MP.measure_program, in_base=PIN_A, jmp_pin=PIN_A)
    d, d2, budget = 20, 5, 1000
    m = meter(bench)
    m._load(sm, ME._MOV_X_OSR, d)
    m._load(sm, ME._MOV_Y_OSR, budget)
    m._load(sm, 0, d2)
    bench[0x50302000] = 1 << 9 | 1 << 1
    pushes = []
    for cycle in range(1, 400):
        bench.run_to(cycle)
        while sm.rx_fifo():
            pushes.append((cycle - 1, sm.get()))  # pushed in the cycle before `cycle`
    s = R + ME.HI_FIXED + d  # first high test
    k = (F - s + 1) // 2  # tests that see it high
    e = s + 2 * k
    s2 = e + ME.LO_FIXED + d2
    j = (E - s2 + 1) // 2
    e2 = s2 + 2 * j
    assert pushes == [(e + 1, budget - k), (e2 + 1, budget - k - j)]


def test_budget_used_up_pushes_mark_and_parks():
    inputs = StepInputs([(10, PIN_A, 1), (5000, PIN_A, 0)])
    bench = Bench(inputs)
    assert two(bench, PIN_A, PIN_A, 0, 0, 100) is None
    # Both machines pushed MARK alone and park: nothing more comes.
    park = bench.offsets[(1, id(MP.measure_program))] + 10
    for k in (5, 6):
        sm = bench.sms[k]
        sm.set_enabled(True)
        bench.sleep_ms(2)
        assert sm.pc == park and len(sm.rx) == 0


def test_counts_and_edges():
    assert ME.counts(10, [[7, 2], [6, 3]]) == [(3, 5), (4, 3)]
    assert ME.counts(10, [[ME.MARK], [6, 3]]) is None
    assert ME.counts(10, [[7, ME.MARK], [6, 3]]) is None
    # Machine 0 samples at 2, 4, 6 (high) and 8 (low); machine 1 at 3, 5, 7 (high), 9: fall 8.
    assert ME.edges([(3, 1), (3, 1)], 0, 0) == (8, 8 + 4 + 2)
    assert ME.edges([(0, 1), (0, 1)], 0, 0) is None  # no sample before the edge
    assert ME.edges([(3, 1), (1, 1)], 0, 0) is None  # not one edge for both
    assert ME.edges([(0, 5), (0, 5)], 0, 0, timed=False) == (2, 2 + 4 + 10)
    assert ME.edges([(1, 5), (0, 5)], 0, 0, timed=False) is None


# --------------------------------------------------------------------------- exactness


def pulses(pin1, pin2, width, gap, period, t0, count=6):
    edges = []
    for n in range(count):
        r = t0 + n * period
        edges += [(r, pin1, 1), (r + width, pin1, 0)]
        if pin2 is not None:
            edges += [(r + width + gap, pin2, 1), (r + 2 * width + gap, pin2, 0)]
    return StepInputs(edges)


@st.composite
def trains(draw, most=3000):
    width = draw(st.integers(3, most))
    gap = draw(st.one_of(st.just(0), st.integers(1, most)))
    off = draw(st.integers(4, most))
    period = 2 * width + gap + off
    t0 = draw(st.integers(0, period))
    return width, gap, period, t0


@MANY
@given(trains(), st.data())
def test_two_machines_time_width_and_period_exactly(train, data):
    """Any delay that starts the counts before their edges gives the exact cycles."""
    width, gap, period, t0 = train
    d1 = data.draw(st.integers(0, width - ME.HI_FIXED - 1), label="d1")
    d2 = data.draw(st.integers(0, period - width - ME.LO_FIXED - 2), label="d2")
    bench = Bench(pulses(PIN_A, PIN_B, width, gap, period, t0))
    ks = two(bench, PIN_A, PIN_A, d1, d2, 4 * period)
    assert ME.edges(ks, d1, d2) == (width, period)
    # ... which is the sum rule of stim.measure_program's docstring
    (k1, j1), (k2, j2) = ks
    assert ME.HI_FIXED + d1 + k1 + k2 == width
    assert ME.HI_FIXED + d1 + k1 + k2 + ME.LO_FIXED + d2 + j1 + j2 == period


@MANY
@given(trains(), st.data())
def test_two_machines_time_the_phase_2_rise_exactly(train, data):
    width, gap, period, t0 = train
    assume(width + gap > ME.HI_FIXED + ME.LO_FIXED)  # the lead's widths are 8 and up
    d2 = data.draw(st.integers(0, width + gap - ME.HI_FIXED - ME.LO_FIXED - 1), label="d2")
    bench = Bench(pulses(PIN_B, PIN_A, width, gap, period, t0))  # inverted: phase 1 on B
    ks = two(bench, PIN_B, PIN_A, 0, d2, 4 * period)
    assert ME.edges(ks, 0, d2, timed=False) == (ME.HI_FIXED, width + gap)


@MANY
@given(trains(), st.data())
def test_a_count_started_after_its_edge_is_a_miss(train, data):
    width, gap, period, t0 = train
    # The count begins after the fall, while the pin is low (not in a later pulse: below).
    d1 = data.draw(st.integers(width - ME.HI_FIXED, period - ME.HI_FIXED - 1), label="d1")
    bench = Bench(pulses(PIN_A, PIN_B, width, gap, period, t0))
    ks = two(bench, PIN_A, PIN_A, d1, 0, 4 * period)
    assert ks is None or ME.edges(ks, d1, 0) is None  # never a value


def test_a_delay_past_a_whole_pulse_times_the_next_one():
    """The limit stim.measure documents: the machines do not watch the pins during a delay,
    so one that spans a whole low interval times the next pulse's fall from R."""
    bench = Bench(pulses(PIN_A, None, 3, 0, 10, 0))
    ks = two(bench, PIN_A, PIN_A, 8, 0, 40)
    assert ME.edges(ks, 8, 0) == (13, 20)  # the next pulse's fall and the rise after it


def test_one_machine_alone_is_only_good_to_two_cycles():
    """Why there are two: the counts of a single machine are the same for widths w, w + 1."""
    seen = {}
    for width in (41, 42):
        bench = Bench(pulses(PIN_A, None, width, 0, 200, 17))
        m = meter(bench)
        sm = bench.StateMachine(5, MP.measure_program, in_base=PIN_A, jmp_pin=PIN_A)
        m._load(sm, ME._MOV_X_OSR, 0)
        m._load(sm, ME._MOV_Y_OSR, 1000)
        m._load(sm, 0, 0)
        bench[0x50302000] = 1 << 9 | 1 << 1
        bench.sleep_ms(1)
        seen[width] = sm.get()
    assert seen[41] == seen[42]


# --------------------------------------------------------------------------- stim.measure


@st.composite
def lead_settings(draw, most=20_000):
    shape = draw(st.sampled_from([sg.BIPH, sg.MON]))
    width = draw(st.one_of(st.integers(8, 40), st.integers(8, most)))
    gap = draw(st.one_of(st.just(0), st.integers(8, 40), st.integers(8, most)))
    pulse = width if shape == sg.MON else 2 * width + gap
    period = pulse + draw(st.one_of(st.integers(12, 60), st.integers(12, 4 * most)))
    s = sg.Settings(width=width, gap=gap, period=period, shape=shape)
    s.polarity = draw(st.integers(0, 1))
    return s


def expect(s):
    return s.width, (s.gap if s.shape == sg.BIPH else 0), s.period


def measure_lead(bench, s):
    pin1 = PIN_A + s.polarity
    pin2 = PIN_A + 1 - s.polarity if s.shape == sg.BIPH else None
    spacing = s.burst_period if s.burst_count > 1 else s.period
    return meter(bench).pins(pin1, pin2, s.width, s.gap, s.period, spacing)


@MANY
@given(lead_settings(), st.data())
def test_meter_on_synthetic_trains(s, data):
    pin1 = PIN_A + s.polarity
    pin2 = PIN_A + 1 - s.polarity if s.shape == sg.BIPH else None
    t0 = data.draw(st.integers(0, 3 * s.period), label="t0")
    bench = Bench(Train(pin1, pin2, s.width, s.gap, [0], s.period, t0))
    bench.sleep_ms(data.draw(st.integers(0, 2), label="idle ms"))
    assert measure_lead(bench, s) == expect(s)


def lead_driver(s):
    """The lead program playing settings s on PIN_A/PIN_B, as stim.lead sets it up."""
    words = list(PP.pulse_program[0])
    execctrl = PP.pulse_program[-5] | INTERLOCK << 24
    sm = StateMachine(
        words,
        execctrl=execctrl,
        shiftctrl=PP.pulse_program[-4],
        pinctrl=2 << 20 | ARM << 15 | PIN_A,
        inputs=ConstantInputs({ARM: 1, INTERLOCK: 1}),
    )
    sm.pin_dirs = 1 << PIN_A | 1 << PIN_B
    sm.exec(rp2_asm.asm_pio_encode("set(x, 1)", 0))
    for word in sg.delay_words(s):
        assert sm.put(word)
    rec = sg.record(s)
    sm.attach_dma(DmaFeed(rec, ring_words=len(rec), count=1 << 40))
    sm.set_enabled(True)
    return sm


@SLOW
@given(lead_settings(), st.integers(0, 3))
def test_meter_on_the_lead_program(s, idle_ms):
    """The lead program's own output, measured: the values are the programmed cycles."""
    assume(sg.conflict(s) is None)
    bench = Bench(ConstantInputs({ARM: 1, INTERLOCK: 1}), drivers=[lead_driver(s)])
    bench.run_to(idle_ms * CYCLES_MS + 1234)
    assert measure_lead(bench, s) == expect(s)


@SLOW
@given(lead_settings(most=4000), st.integers(2, 4), st.data())
def test_meter_on_bursts_times_the_pulse_period(s, count, data):
    """A pass that catches a burst's last pulse sees no rise one period later and is
    repeated: the period measured is the pulse period inside a burst."""
    s.burst_count = count
    # The pause after a burst is longer than the period by more than a counting window.
    s.burst_period = count * s.period + data.draw(st.integers(5000, 20_000), label="extra")
    assume(sg.conflict(s) is None)
    bench = Bench(ConstantInputs({ARM: 1, INTERLOCK: 1}), drivers=[lead_driver(s)])
    bench.run_to(data.draw(st.integers(0, 3 * s.burst_period), label="start"))
    assert measure_lead(bench, s) == expect(s)


def test_a_pass_on_a_bursts_last_pulse_is_repeated():
    s = sg.Settings(width=1000, gap=300, period=10_000)
    s.burst_count, s.burst_period = 2, 30_000
    lead = lead_driver(s)
    bench = Bench(ConstantInputs({ARM: 1, INTERLOCK: 1}), drivers=[lead])
    # Just after a burst's first rise (cycle 8 + 30000): the first pulse caught is the last
    # of its burst, followed by 20000 cycles of rest, not a period.
    bench.run_to(sg.FIRST_PULSE + s.burst_period + 100)
    assert measure_lead(bench, s) == (1000, 300, 10_000)
    starts = [v for a, v in bench.writes if a == 0x50302000]
    assert len(starts) > 2  # pass A more than once, then pass B


@pytest.mark.parametrize("delta", [-200, -1, 1, 37, 200])
def test_meter_reports_the_pins_not_the_settings(delta):
    """An output that differs from its settings (within the counting windows) is measured as
    it is: width, gap and period each off by delta."""
    w, g, p = 25_000, 6_250, 125_000
    train = Train(PIN_A, PIN_B, w + delta, g + delta, [0], p + delta, 777, width2=w + delta)
    bench = Bench(train)
    assert meter(bench).pins(PIN_A, PIN_B, w, g, p, p) == (w + delta, g + delta, p + delta)


def test_edges_far_from_the_settings_are_an_error_not_a_value():
    bench = Bench(Train(PIN_A, PIN_B, 30_000, 6_250, [0], 125_000))
    with pytest.raises(ScpiError) as exc:
        meter(bench).pins(PIN_A, PIN_B, 25_000, 6_250, 125_000, 125_000)
    assert exc.value.code == -230 and "windows" in exc.value.msg
    assert bench.ticks_ms() <= 601  # the deadline holds


def test_no_pulses_times_out():
    bench = Bench(ConstantInputs())
    with pytest.raises(ScpiError) as exc:
        meter(bench).pins(PIN_A, PIN_B, 25_000, 6_250, 125_000, 125_000)
    assert exc.value.code == -230 and "no complete pulse" in exc.value.msg
    assert 600 <= bench.ticks_ms() <= 601
    assert bench.writes[-1] == (0x50303000, 0b0110)  # both machines stopped


def test_a_stuck_high_output_times_out():
    bench = Bench(ConstantInputs({PIN_A: 1}))
    with pytest.raises(ScpiError) as exc:
        meter(bench).pins(PIN_A, None, 25_000, 0, 125_000, 125_000)
    assert exc.value.code == -230


def test_long_periods_are_refused_at_once():
    bench = Bench(ConstantInputs())
    with pytest.raises(ScpiError) as exc:
        meter(bench).pins(PIN_A, PIN_B, 25_000, 6_250, 15_000_000, 15_000_000)
    assert exc.value.code == -221 and bench.ticks_ms() == 0
    # Width and period alone need one pass: allowed.
    bench = Bench(Train(PIN_A, None, 25_000, 0, [0], 15_000_000, 10))
    assert meter(bench).pins(PIN_A, None, 25_000, 0, 15_000_000, 15_000_000) == (
        25_000,
        0,
        15_000_000,
    )


def test_machines_start_together_and_stop_after_each_pass():
    bench = Bench(Train(PIN_A, PIN_B, 100, 50, [0], 1000))
    meter(bench).pins(PIN_A, PIN_B, 100, 50, 1000, 1000)
    starts = [v for a, v in bench.writes if a == 0x50302000]
    stops = [v for a, v in bench.writes if a == 0x50303000]
    assert starts == [0x0606, 0x0606]  # SM1 and SM2 enabled, dividers restarted, one write
    assert stops == [0b0110, 0b0110]
    assert not bench.sms[5].enabled and not bench.sms[6].enabled


@given(st.integers(1, 10**10), st.integers(0, 6))
def test_window_brackets_the_expected_edge(h, first):
    assume(h > first)
    d, samples = ME.window(h, first)
    t = ME._tol(h)
    assert d >= 0
    start = first + d
    assert start <= max(first, h - t)  # begins at least _tol before the edge
    assert start + 2 * samples >= h + t  # and samples until _tol after it
    assert samples <= t + 2 or d == 0  # never longer than the window (1024-ish samples)


# --------------------------------------------------------------------------- *TST?


def test_pattern_program_plays_its_constants_until_told_to_stop():
    bench = Bench()
    pat = bench.StateMachine(4, MP.pattern_program, set_base=SYNC)
    meter(bench)._load(pat, ME._MOV_Y_OSR, ME.PATTERN_WIDTH - 3)
    meter(bench)._load(pat, ME._MOV_ISR_OSR, ME.PATTERN_PERIOD - ME.PATTERN_WIDTH - 6)
    pat.active(1)
    bench.run_to(10 * ME.PATTERN_PERIOD + 77)
    pat.put(0)
    bench.run_to(20 * ME.PATTERN_PERIOD)
    rises = bench.inputs.cycles[SYNC][0::2]
    falls = bench.inputs.cycles[SYNC][1::2]
    assert len(rises) == len(falls) == 11  # the one under way when told, then low
    assert {f - r for r, f in zip(rises, falls, strict=True)} == {ME.PATTERN_WIDTH}
    assert {b - a for a, b in zip(rises, rises[1:], strict=False)} == {ME.PATTERN_PERIOD}


class _LeadSM:
    def __init__(self, level):
        self.level = level

    def tx_fifo(self):
        return self.level

    def active(self):
        return False


class _Lead:
    def __init__(self, index, fails=None):
        self.index = index
        self.fails = fails
        self.settings = sg.Settings(width=99)
        self.prepared_with = None
        self.stopped = False

    def prepare(self):
        self.prepared_with = self.settings
        if self.fails == "program":
            raise OSError(12)  # no room for the program
        self.sm = _LeadSM(0 if self.fails == "dma" else 8)

    def stop_now(self):
        self.stopped = True


class _I2C:
    def __init__(self, answers):
        self.answers = answers

    def scan(self):
        return [0x60] if self.answers else []


class _Dac:
    def __init__(self, present, answers):
        self.present, self.addr, self.i2c = present, 0x60, _I2C(answers)


class _Hw:
    def __init__(self, bench, leads, dac):
        self.leads = leads
        self.dac = dac
        self.engine = types.SimpleNamespace(rp2=bench, mem32=bench, sync_pin=SYNC)
        self.bench = bench
        self.rests = 0

    def rest(self):
        self.rests += 1
        sm = self.bench.sms.get(4)
        if sm is not None:
            sm.set_enabled(False)


class _Amp:
    def __init__(self, zero_at=None):
        self._zero_at = zero_at


def _inst(bench, leads=None, dac=None, global_on=False, amps=()):
    leads = leads or [_Lead(i) for i in range(4)]
    hw = _Hw(bench, leads, dac or _Dac(True, True))
    return types.SimpleNamespace(hw=hw, global_on=global_on, amps=list(amps))


def test_self_test_passes_and_restores():
    bench = Bench()
    inst = _inst(bench)
    assert ME.self_test(inst, clock=bench) == 0
    bench.run_to(bench.now + 1)
    assert bench.inputs.level(SYNC, bench.now) == 0  # the test signal ended low
    for lead in inst.hw.leads:
        assert lead.prepared_with is not None and lead.prepared_with.width == 25_000
        assert lead.settings.width == 99 and lead.stopped  # its own settings are back
    assert inst.hw.rests == 3 and not bench.sms[4].enabled  # before, after the leads, at the end


def test_self_test_bits():
    bench = Bench()
    leads = [_Lead(0), _Lead(1, "program"), _Lead(2), _Lead(3, "dma")]
    assert ME.self_test(_inst(bench, leads), clock=bench) == ME.TST_LEAD << 1 | ME.TST_LEAD << 3
    bench = Bench()
    assert ME.self_test(_inst(bench, dac=_Dac(True, False)), clock=bench) == ME.TST_DAC
    bench = Bench()
    assert ME.self_test(_inst(bench, dac=_Dac(False, False)), clock=bench) == 0
    broken = Bench(broken=True)  # the test pattern never reaches the pad
    assert ME.self_test(_inst(broken), clock=broken) == ME.TST_MEASURE


def test_self_test_needs_the_outputs_off_and_waits_for_a_pulse_in_flight():
    bench = Bench()
    with pytest.raises(ScpiError) as exc:
        ME.self_test(_inst(bench, global_on=True), clock=bench)
    assert exc.value.code == -221
    bench.run_to(1000 * CYCLES_MS)
    assert ME.self_test(_inst(bench, amps=[_Amp(1020), _Amp(990)]), clock=bench) == 0
    assert bench.ticks_ms() >= 1020
    with pytest.raises(ScpiError) as exc:
        ME.self_test(_inst(bench, amps=[_Amp(bench.ticks_ms() + 2000)]), clock=bench)
    assert exc.value.code == -221
    # A stop long ago (or a wrapped tick count) is no reason to wait.
    assert ME.self_test(_inst(bench, amps=[_Amp(bench.ticks_ms() + 10**6)]), clock=bench) == 0


# --------------------------------------------------------------------------- SCPI


class _FirmwareModules:
    """sys.modules with an rp2 made of the simulated assembler, for as long as it is entered."""

    def __enter__(self):
        import stim

        self.names = ("rp2", "stim.measure_cmds", "stim.measure_program", "stim.measure")
        self.saved = {name: sys.modules.get(name) for name in self.names}
        self.attrs = {
            n: stim.__dict__.get(n) for n in ("measure_cmds", "measure_program", "measure")
        }
        fake = types.ModuleType("rp2")
        fake.asm_pio = rp2_asm.asm_pio  # type: ignore[attr-defined]
        fake.PIO = rp2_asm.PIOConst  # type: ignore[attr-defined]
        sys.modules["rp2"] = fake
        for name in self.names[1:]:
            sys.modules.pop(name, None)
        return importlib.import_module("stim.measure_cmds")

    def __exit__(self, *exc):
        import stim

        for name, module in self.saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for n, v in self.attrs.items():
            if v is None:
                stim.__dict__.pop(n, None)
            else:
                setattr(stim, n, v)


def test_queries_load_the_measurement_for_the_call_only():
    from stim.errors import ErrorQueue
    from stim.scpi import Parser

    errors = ErrorQueue(8)
    parser = Parser(errors)
    lead = types.SimpleNamespace(running=False, settings=sg.Settings())
    inst = types.SimpleNamespace(global_on=True, lead=lambda n: lead)
    with _FirmwareModules() as cmds:
        cmds.MeasureCommands(inst, parser)
        assert "stim.measure" not in sys.modules  # nothing of it at boot
        assert parser.execute("MEAS1:CYCL?;WIDT?;GAP?;PER?") == []
        assert errors.codes() == [-221] * 4
        assert errors.pop() == '-221,"Settings conflict;lead not running"'
        assert "stim.measure" not in sys.modules  # dropped after each query
        errors.clear()
        parser.execute("MEAS1:WIDT")
        assert errors.codes() == [-113]  # query only
    for h in ("MEASure#:WIDTh", "MEASure#:GAP", "MEASure#:PERiod", "MEASure#:CYCLes"):
        assert h in parser.headers()


def test_query_replies_in_seconds_and_cycles(monkeypatch):
    class BenchMeter(ME.Meter):
        def __init__(self, rp2, mem32):
            super().__init__(rp2, mem32, rp2)  # the board's clock is `time`; here the bench's

    monkeypatch.setattr(ME, "Meter", BenchMeter)
    s = sg.Settings(width=12_500, gap=6_250, period=125_000)
    lead = types.SimpleNamespace(running=True, settings=s, pin_a=PIN_A)
    replies = {}
    for what in range(4):
        bench = Bench(Train(PIN_A, PIN_B, 12_500, 6_250, [0], 125_000, 99))
        hw = types.SimpleNamespace(engine=types.SimpleNamespace(rp2=bench, mem32=bench))
        inst = types.SimpleNamespace(global_on=True, lead=lambda n: lead, hw=hw)
        replies[what] = ME.query(inst, (1,), [], True, what)
    assert replies == {
        0: "1.000000E-04",
        1: "5.000000E-05",
        2: "1.000000E-03",
        3: "12500,6250,125000",
    }
