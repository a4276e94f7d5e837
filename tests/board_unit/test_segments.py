"""The cycle compiler (stim.segments) and the lead PIO program (stim.pulse_program).

Three layers of evidence:

* the words decode back to the programmed durations (arithmetic on the words);
* a cycle model of the program (``play``) turns word streams into pin edges,
  and reproduces ``timeline()`` for random settings over the whole ranges;
* the assembled program runs in the cycle-exact PIO executor with a DMA feed
  and produces exactly ``timeline()``, and exactly the model's edges when the
  ARM and interlock inputs change at random cycles; disarming and re-arming
  leaves the later pulses exactly where an undisturbed lead plays them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import types
from itertools import groupby
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stim import segments as sg
from stim.segments import Settings

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "host"
MP_DIR = HOST / "picostim" / "sim" / "mp"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))

from picostim.pio import ConstantInputs, DmaFeed, StateMachine, StepInputs  # noqa: E402


def _import_rp2_asm():
    """The simulated rp2's assembler, without leaving the simulated board modules on sys.path."""
    if "rp2_asm" in sys.modules:
        return sys.modules["rp2_asm"]
    sys.path.insert(0, str(MP_DIR))
    try:
        return importlib.import_module("rp2_asm")
    finally:
        sys.path.remove(str(MP_DIR))


rp2_asm = _import_rp2_asm()

SEC = 125_000_000  # cycles per second
Y_MAX = (1 << 29) - 1
PIN_A, PIN_B, ARM, INTERLOCK = 10, 11, 14, 15
ARM_READ = 6  # cycle (1-based) of a pulse-start segment in which "in pins" samples ARM

SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _import_program():
    """Import stim.pulse_program with an rp2 made of the simulated assembler.

    The simulated rp2 module proper talks to the virtual board's supervisor
    over inherited file descriptors, so it is not imported inside pytest;
    sys.modules is left as it was found.
    """
    import stim

    fake = types.ModuleType("rp2")
    fake.asm_pio = rp2_asm.asm_pio
    fake.PIO = rp2_asm.PIOConst
    saved = {name: sys.modules.get(name) for name in ("rp2", "stim.pulse_program")}
    saved_attr = stim.__dict__.get("pulse_program")
    sys.modules["rp2"] = fake
    sys.modules.pop("stim.pulse_program", None)
    try:
        return importlib.import_module("stim.pulse_program")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        if saved_attr is None:
            stim.__dict__.pop("pulse_program", None)
        else:
            stim.pulse_program = saved_attr


PP = _import_program()
PROGRAM = PP.pulse_program
MIN_PLAIN = PP.PRE_PLAIN + PP.POST_FIXED  # shortest hold before a plain segment
MIN_START = PP.PRE_START + PP.POST_FIXED  # shortest hold before a pulse start
# A pulse start samples ARM this many cycles before its pin write.
ARM_LEAD = PP.PRE_START - ARM_READ


def _park_address():
    """Address of the program's only unconditional jump-to-self: where a dead channel parks."""
    words = list(PROGRAM[0])
    jmp_self = [i for i, w in enumerate(words) if w & 0xE0E0 == 0 and w & 31 == i]
    assert len(jmp_self) == 1
    return jmp_self[0]


PARK = _park_address()


# --------------------------------------------------------------------------- word helpers


def decode(word):
    """(start flag, pattern, y) of a segment word."""
    return word & 1, word >> 1 & 3, word >> 3


def durations(words):
    """D_i of a repeating record: each word's hold time, the record's first word following it."""
    out = []
    for i, word in enumerate(words):
        nxt = words[(i + 1) % len(words)]
        pre = PP.PRE_START if nxt & 1 else PP.PRE_PLAIN
        out.append(decode(word)[2] + PP.POST_FIXED + pre)
    return out


def stream(s, max_words=6000):
    """Delay words, then record words as the DMA plays them; also the pulses they cover.

    Returns (words, complete, pulses): ``complete`` is True when the stream is
    the whole finite train; otherwise it stops after whole records, and
    ``pulses`` is the number of pulses it plays completely.
    """
    rec = sg.record(s)
    total = sg.train_words(s)
    words = sg.delay_words(s)
    if total and total <= max_words:
        words += [rec[i % len(rec)] for i in range(total)]
        return words, True, sg.pulse_count(s)
    records = max(1, max_words // len(rec))
    return words + rec * records, False, records * s.burst_count


def play(words, x=1, arm=None, il=None):
    """Cycle model of pulse_program over a word stream the FIFO never runs dry of.

    ``arm(c)`` and ``il(c)`` give the ARM and interlock levels read at cycle c
    (default: high). Returns (edges as [(cycle, a, b)], dead) where ``dead``
    tells the machine parked. Cycle 0 is the cycle of the first pull.
    """
    arm = arm or (lambda c: 1)
    il = il or (lambda c: 1)
    t = 0  # cycle of this segment's pull
    pins = (0, 0)
    out = []

    def write(cycle, pattern):
        nonlocal pins
        new = (pattern & 1, pattern >> 1 & 1)
        if new != pins:
            pins = new
            out.append((cycle, new[0], new[1]))

    for word in words:
        flag, pattern, y = decode(word)
        if flag:
            if not il(t + 3):  # jmp pin, 4th cycle
                write(t + 4, 0)  # mov pins, null
                return out, True
            x = arm(t + ARM_READ - 1)  # in pins, 6th cycle
            at = t + 8
        else:
            at = t + 4
        if x:
            write(at, pattern)  # out pins [1]
        # Quiet (x = 0): out null, jmp count; the pins keep their level (rest).
        t = at + y + 4  # delay or jmp, out y, y + 1 loop cycles
    return out, False


# --------------------------------------------------------------------------- executor helpers


def make_sm(inputs, offset=0):
    """The assembled program in a state machine wired as the channel driver wires it."""
    words = list(PROGRAM[0])
    execctrl = PROGRAM[3]
    if offset:
        # Loaded higher up, as the rp2 allocator may: jump targets and wrap move along.
        words = [w + offset if w & 0xE000 == 0 else w for w in words]
        wrap_top = (execctrl >> 12 & 31) + offset
        wrap_bottom = (execctrl >> 7 & 31) + offset
        execctrl = execctrl & ~(31 << 12 | 31 << 7) | wrap_top << 12 | wrap_bottom << 7
    mem = [0] * offset + words
    pinctrl = 2 << 20 | ARM << 15 | PIN_A  # OUT count 2 (out_init), IN_BASE, OUT_BASE
    sm = StateMachine(
        mem,
        execctrl=execctrl | INTERLOCK << 24,  # jmp_pin
        shiftctrl=PROGRAM[4],
        pinctrl=pinctrl,
        inputs=inputs,
        pc=offset,
    )
    sm.exec(rp2_asm.asm_pio_encode("set(x, 1)", 0))  # the driver's step before enabling
    return sm


def levels(edges):
    """Executor edges -> [(cycle, a, b)] after each cycle with a change."""
    state = {PIN_A: 0, PIN_B: 0}
    out = []
    for cycle, group in groupby(edges, key=lambda e: e[0]):
        for _, pin, level in group:
            assert pin in state, "edge on a pin that is not an output"
            state[pin] = level
        out.append((cycle, state[PIN_A], state[PIN_B]))
    return out


def run(s, until, inputs=None, count_override=None, offset=0):
    """Play settings on the executor up to ``until`` (exclusive); return (sm, levels)."""
    if inputs is None:
        inputs = ConstantInputs({ARM: 1, INTERLOCK: 1})
    sm = make_sm(inputs, offset)
    for word in sg.delay_words(s):
        assert sm.put(word), "delay words must fit the joined TX FIFO"
    rec = sg.record(s)
    count = count_override or sg.train_words(s) or 1 << 40
    sm.attach_dma(DmaFeed(rec, ring_words=len(rec), count=count))
    sm.set_enabled(True)
    sm.run_until(until)
    return sm, levels(sm.edges)


# --------------------------------------------------------------------------- strategies


@st.composite
def any_settings(draw, max_period=3600 * SEC, max_bursts=1100, max_width=SEC):
    """Settings over the whole ranges, with extra weight at the limits on both sides."""
    shape = draw(st.sampled_from([sg.BIPH, sg.MON]))
    width = draw(st.one_of(st.integers(1, 30), st.integers(MIN_PLAIN, max_width)))
    gap = draw(st.one_of(st.just(0), st.integers(0, 30), st.integers(0, max_width)))
    pulse = 2 * width + gap if shape == sg.BIPH else width
    longest = max(MIN_START, max_period - pulse)
    off = draw(
        st.one_of(
            st.integers(-3, 40),
            st.integers(MIN_START, longest),
            st.integers(longest // 20, longest),  # long rests: many words per record
        )
    )
    period = max(1, pulse + off)
    count = draw(st.one_of(st.just(1), st.integers(2, 6), st.integers(2, max_bursts)))
    burst_period = 0
    spacing = period
    if count > 1:
        burst_off = draw(st.one_of(st.integers(-3, 40), st.integers(MIN_START, max_period)))
        burst_period = max(1, (count - 1) * period + pulse + burst_off)
        spacing = burst_period
    train = draw(
        st.one_of(
            st.just(0),
            st.integers(1, 4 * spacing),
            st.just(spacing),
            st.just(spacing + 1),
            st.integers(1, 10**13),
        )
    )
    delay = draw(
        st.one_of(
            st.just(0),
            st.integers(0, 20),
            st.integers(0, sg.DELAY_MAX + 100),
            st.sampled_from([sg.DELAY_MAX, sg.DELAY_MAX + 1, 8 * Y_MAX]),
        )
    )
    return Settings(
        width=width,
        gap=gap,
        period=period,
        shape=shape,
        polarity=draw(st.integers(0, 1)),
        burst_count=count,
        burst_period=burst_period,
        train=train,
        delay=delay,
    )


def small_settings():
    """Possible settings that keep executor runs short (few words per record)."""
    return any_settings(max_period=10 * SEC, max_bursts=6, max_width=SEC // 10).filter(
        lambda s: sg.conflict(s) is None
    )


# --------------------------------------------------------------------------- the reference


def _pieces_range(d, before_start):
    """Fewest and most words a hold of d cycles can be split into, from the word timing."""
    pre_last = PP.PRE_START if before_start else PP.PRE_PLAIN
    last_max = Y_MAX + PP.POST_FIXED + pre_last
    other_max = Y_MAX + PP.POST_FIXED + PP.PRE_PLAIN
    fewest = 1
    if d > last_max:
        fewest += -(-(d - last_max) // other_max)
    other_min = PP.POST_FIXED + PP.PRE_PLAIN
    most = (d - (PP.POST_FIXED + pre_last)) // other_min + 1
    return fewest, most


def possible(s):
    """Whether the settings can be played, decided from the word timing alone."""
    biph = s.shape == sg.BIPH
    pulse = 2 * s.width + s.gap if biph else s.width
    min_plain = PP.PRE_PLAIN + PP.POST_FIXED
    min_start = PP.PRE_START + PP.POST_FIXED
    if s.width < min_plain or (biph and 0 < s.gap < min_plain):
        return False
    if s.period - pulse < min_start:
        return False
    spacing = s.period
    if s.burst_count > 1:
        spacing = s.burst_period
        if spacing - (s.burst_count - 1) * s.period - pulse < min_start:
            return False
    # Delay words: plain rest words, the last one before the first pulse start.
    delay_hold = s.delay + PP.PRE_START - PP.PRE_PLAIN
    if s.delay and not (min_start <= delay_hold and _pieces_range(delay_hold, True)[0] <= 8):
        return False
    holds = [(s.width, False)]
    if biph:
        if s.gap:
            holds.append((s.gap, False))
        holds.append((s.width, False))
    inner = [*holds, (s.period - pulse, True)]
    last = [*holds, (spacing - (s.burst_count - 1) * s.period - pulse, True)]
    fewest = most = 0
    for d, before_start in inner * (s.burst_count - 1) + last:
        lo, hi = _pieces_range(d, before_start)
        fewest += lo
        most += hi
    size = 1
    while size < fewest:
        size *= 2
    if size > sg.RECORD_MAX or size > most:
        return False
    if s.train:
        endless = s.copy()
        endless.train = 0
        rec = sg.record(endless)
        r = (s.train - 1) // spacing
        j = min(s.burst_count - 1, (s.train - 1 - r * spacing) // s.period)
        starts = [i for i, w in enumerate(rec) if w & 1]
        end = starts[j + 1] if j + 1 < len(starts) else len(rec)
        last_on = max(i for i in range(starts[j], end) if decode(rec[i])[1])
        if r * len(rec) + last_on + 2 > 0xFFFFFFFF:
            return False
    return True


# --------------------------------------------------------------------------- program


PIOASM_TEXT = """
.program lead
.wrap_target
    pull block
    out y, 1
    jmp !y emit
    jmp pin armed
dead:
    mov pins, null
park:
    jmp park
armed:
    mov isr, null
    in pins, 1
    mov x, isr
emit:
    jmp !x quiet
    out pins, 2 [1]
count:
    out y, 29
loop:
    jmp y-- loop
.wrap
quiet:
    out null, 2
    jmp count
"""


def test_program_matches_pioasm_text():
    adafruit_pioasm = pytest.importorskip("adafruit_pioasm")
    reference = adafruit_pioasm.Program(PIOASM_TEXT)
    assert list(PROGRAM[0]) == list(reference.assembled)
    execctrl = PROGRAM[3]
    assert execctrl >> 12 & 31 == reference.pio_kwargs["wrap"] == 12
    assert execctrl >> 7 & 31 == reference.pio_kwargs.get("wrap_target", 0) == 0


def test_program_configuration():
    words, _, _, execctrl, shiftctrl, out_init, set_init, sideset_init = PROGRAM
    assert len(words) == 15
    assert shiftctrl >> 30 & 3 == rp2_asm.PIOConst.JOIN_TX
    assert shiftctrl >> 19 & 1 == 1  # OUT shifts right: the flag is bit 0
    assert shiftctrl >> 17 & 1 == 0  # no autopull: the program pulls once per segment
    assert shiftctrl >> 18 & 1 == 0  # IN shifts left: X gets exactly the ARM bit
    assert list(out_init) == [rp2_asm.PIOConst.OUT_LOW, rp2_asm.PIOConst.OUT_LOW]
    assert set_init is None and sideset_init is None
    assert execctrl >> 30 & 1 == 0


def test_constants_agree():
    assert (sg.PRE_PLAIN, sg.PRE_START, sg.POST_FIXED, sg.Y_MAX) == (
        PP.PRE_PLAIN,
        PP.PRE_START,
        PP.POST_FIXED,
        PP.Y_MAX,
    )
    assert (PP.PRE_PLAIN, PP.PRE_START, PP.POST_FIXED, PP.Y_MAX) == (5, 9, 3, Y_MAX)
    assert sg.MIN_PLAIN == sg.PRE_PLAIN + sg.POST_FIXED == MIN_PLAIN == 8
    assert sg.MIN_BEFORE_START == sg.PRE_START + sg.POST_FIXED == MIN_START == 12
    assert sg.MIN_WIDTH == sg.MIN_GAP == sg.MIN_PLAIN
    assert sg.MIN_OFF == sg.MIN_BEFORE_START
    assert sg.MIN_DELAY + sg.PRE_START - sg.PRE_PLAIN == sg.MIN_BEFORE_START
    assert sg.MIN_DELAY == 8
    assert sg.FIRST_PULSE == sg.PRE_START - 1 == 8
    assert sg.PIECE_MAX == Y_MAX + 8
    assert sg.DELAY_MAX == 8 * (Y_MAX + 8) == 4_294_967_352


def test_measured_cycle_budget():
    """PRE_PLAIN, PRE_START, POST and the minimum holds, measured on the executor."""

    def word(flag, pattern, y):
        return y << 3 | pattern << 1 | flag

    # A plain first word (X = 1): its pins change in its 5th cycle, cycle 4.
    # Then holds of y = 0 words: 8 cycles before a plain word, 12 before a start.
    words = [
        word(0, sg.PAT_A, 0),
        word(0, sg.PAT_B, 0),
        word(0, 0, 0),
        word(1, sg.PAT_A, 0),
        word(0, 0, 0),
        word(1, sg.PAT_B, 3),
        word(0, sg.PAT_A, 100),
        word(0, 0, 0),
    ]
    sm = make_sm(ConstantInputs({ARM: 1, INTERLOCK: 1}))
    sm.attach_dma(DmaFeed(words))
    sm.set_enabled(True)
    sm.run_until(1000)
    got = levels(sm.edges)
    plain, start, post = PP.PRE_PLAIN, PP.PRE_START, PP.POST_FIXED
    t0 = plain - 1
    expect = [(t0, 1, 0)]
    t = t0 + 0 + post + plain  # A held 8
    expect.append((t, 0, 1))
    t += 0 + post + plain  # B held 8
    expect.append((t, 0, 0))
    t += 0 + post + start  # rest held 12 before a start
    expect.append((t, 1, 0))
    t += 0 + post + plain
    expect.append((t, 0, 0))
    t += 0 + post + start
    expect.append((t, 0, 1))
    t += 3 + post + plain
    expect.append((t, 1, 0))
    t += 100 + post + plain
    expect.append((t, 0, 0))
    assert got == expect
    measured = [b[0] - a[0] for a, b in zip(got, got[1:], strict=False)]
    assert measured == [8, 8, 12, 8, 12, 11, 108]
    assert got == play(words)[0]
    # Undelayed channels: the first pulse start writes in its 9th cycle.
    s = Settings(width=8, gap=0, period=36)
    assert run(s, 100)[1][0] == (start - 1, 1, 0) == (sg.FIRST_PULSE, 1, 0)


def test_longest_word_holds_exactly():
    word = Y_MAX << 3 | sg.PAT_A << 1 | 1
    sm = make_sm(ConstantInputs({ARM: 1, INTERLOCK: 1}))
    sm.attach_dma(DmaFeed([word, 0]))
    sm.set_enabled(True)
    sm.run_until(Y_MAX + 100)
    assert levels(sm.edges) == [(8, 1, 0), (8 + Y_MAX + 3 + 5, 0, 0)]


# --------------------------------------------------------------------------- compiler


def test_defaults():
    s = Settings()
    assert (s.width, s.gap, s.period, s.shape, s.polarity) == (25_000, 6_250, 6_250_000, "BIPH", 0)
    assert (s.burst_count, s.burst_period, s.train, s.delay) == (1, 0, 0, 0)
    assert sg.conflict(s) is None
    rec = sg.record(s)
    assert [decode(w) for w in rec] == [
        (1, sg.PAT_A, 25_000 - 8),
        (0, 0, 6_250 - 8),
        (0, sg.PAT_B, 25_000 - 8),
        (0, 0, 6_250_000 - 56_250 - 12),
    ]
    assert durations(rec) == [25_000, 6_250, 25_000, 6_250_000 - 56_250]
    assert sg.delay_words(s) == [] and sg.train_words(s) == 0
    assert sg.pulse_cycles(s) == 56_250
    copy = s.copy()
    copy.width = 1
    assert s.width == 25_000 and "width=25000" in repr(s)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_settings())
def test_words_decode_to_the_programmed_durations(s):
    assume(sg.conflict(s) is None)
    rec = sg.record(s)
    assert len(rec) & (len(rec) - 1) == 0 and 2 <= len(rec) <= sg.RECORD_MAX
    assert sg.record_len(s) == len(rec)
    d = durations(rec)
    spacing = s.burst_period if s.burst_count > 1 else s.period
    assert sum(d) == spacing
    flags = [w & 1 for w in rec]
    assert flags[0] == 1 and sum(flags) == s.burst_count
    for word in rec:
        flag, pattern, y = decode(word)
        assert pattern != 3 and 0 <= y <= Y_MAX and word < 1 << 32
        assert not (flag and pattern == 0)
    # Merge consecutive words of one pattern: the holds of each pulse.
    holds = []
    for i, word in enumerate(rec):
        flag, pattern, _ = decode(word)
        if holds and not flag and holds[-1][0] == pattern:
            holds[-1][1] += d[i]
        else:
            holds.append([pattern, d[i]])
    first = sg.PAT_B if s.polarity else sg.PAT_A
    if s.shape == sg.BIPH:
        pulse = [[first, s.width]] + ([[0, s.gap]] if s.gap else []) + [[3 - first, s.width]]
    else:
        pulse = [[first, s.width]]
    per = len(pulse) + 1
    assert len(holds) == per * s.burst_count
    for j in range(s.burst_count):
        assert holds[j * per : j * per + per - 1] == pulse
        assert holds[j * per + per - 1][0] == 0
    # Equal charge: both phases as long as each other, whatever the splitting.
    if s.shape == sg.BIPH:
        a = sum(d[i] for i, w in enumerate(rec) if decode(w)[1] == sg.PAT_A)
        b = sum(d[i] for i, w in enumerate(rec) if decode(w)[1] == sg.PAT_B)
        assert a == b == s.width * s.burst_count


@MANY
@given(any_settings())
def test_conflict_exactly_when_impossible_and_words_follow_the_timeline(s):
    why = sg.conflict(s)
    if not possible(s):
        assert isinstance(why, str) and why
        for fn in (sg.record, sg.record_len, sg.delay_words, sg.train_words):
            with pytest.raises(ValueError, match=why):
                fn(s)
        return
    assert why is None, why
    delay = sg.delay_words(s)
    assert len(delay) <= 8 and (not delay) == (s.delay == 0)
    assert all(w & 7 == 0 for w in delay)
    words, complete, pulses = stream(s)
    got, dead = play(words)
    assert not dead
    # play() counts from the first pull, which is the enable cycle.
    assert got == sg.timeline(s, pulses)
    if complete:
        per_pulse = 2 if s.shape == sg.MON else (4 if s.gap else 3)
        assert pulses * per_pulse == len(got)
        assert got[-1][1:] == (0, 0)
        # Every pulse that starts before `train` cycles after the first, and no other.
        spacing = s.burst_period if s.burst_count > 1 else s.period
        k = pulses
        nxt = (k // s.burst_count) * spacing + (k % s.burst_count) * s.period
        last = ((k - 1) // s.burst_count) * spacing + ((k - 1) % s.burst_count) * s.period
        assert last < s.train <= nxt


def test_extremes():
    hour = 3600 * SEC
    s = Settings(period=hour)
    assert sg.conflict(s) is None
    rec = sg.record(s)
    assert len(rec) == 1024 and sum(durations(rec)) == hour
    s = Settings(width=8, gap=0, period=36, shape=sg.BIPH)
    assert sg.record(s) == [3, 4, 0, 0]
    assert sg.conflict(Settings(width=8, gap=0, period=35)) == "period too short to pad the record"
    assert sg.conflict(Settings(width=8, shape=sg.MON, period=20)) is None
    assert sg.conflict(Settings(width=8, shape=sg.MON, period=19)) is not None
    assert sg.conflict(Settings(width=7)) == "pulse width below minimum"
    assert sg.conflict(Settings(gap=7)) == "interphase gap below minimum"
    assert sg.conflict(Settings(gap=8)) is None
    assert sg.conflict(Settings(shape=sg.MON, gap=7)) is None  # gap unused
    assert sg.conflict(Settings(period=56_250 + 11)) == "off time between pulses below minimum"
    assert sg.conflict(Settings(period=56_250 + 12)) is None
    assert sg.conflict(Settings(period=56_249)) == "pulse longer than period"
    assert sg.conflict(Settings(burst_count=3, burst_period=12_500_000)) == (
        "burst longer than burst period"
    )
    assert sg.conflict(Settings(burst_count=3, burst_period=12_556_261)) == (
        "off time between bursts below minimum"
    )
    assert sg.conflict(Settings(burst_count=3, burst_period=12_556_262)) is None
    assert sg.conflict(Settings(shape="TRI")) is not None
    assert sg.conflict(Settings(polarity=2)) is not None
    assert sg.conflict(Settings(width=1.5)) is not None
    assert sg.conflict(Settings(burst_count=0)) is not None
    assert sg.conflict(Settings(train=-1)) is not None
    for delay in range(1, 8):
        assert sg.conflict(Settings(delay=delay)) == "delay below minimum"
    assert sg.conflict(Settings(delay=8)) is None and sg.delay_words(Settings(delay=8)) == [0]
    assert len(sg.delay_words(Settings(delay=30 * SEC))) == 7
    assert len(sg.delay_words(Settings(delay=sg.DELAY_MAX))) == 8
    assert sg.conflict(Settings(delay=sg.DELAY_MAX + 1)) == "delay too long"
    # Too many words: 342 pulses of 3 words, or rests of more than ~4.3 s each.
    too_many = "record needs more than %d words" % sg.RECORD_MAX
    assert sg.conflict(Settings(gap=0, burst_count=342, burst_period=10**12)) == too_many
    assert sg.conflict(Settings(period=hour, burst_count=3, burst_period=3 * hour)) is not None
    # The DMA count is 32 bits.
    s = Settings(width=8, gap=0, period=36, train=10**12)
    assert sg.conflict(s) == "train too long"


def test_trains():
    s = Settings(width=100, gap=0, period=1000, train=1)
    assert sg.pulse_count(s) == 1 and sg.train_words(s) == 3
    s.train = 1000
    assert sg.pulse_count(s) == 1
    s.train = 1001
    assert sg.pulse_count(s) == 2 and sg.train_words(s) == 4 + 3
    s = Settings(width=100, gap=50, period=1000, burst_count=3, burst_period=10_000)
    for train, pulses in ((1, 1), (1001, 2), (2001, 3), (10_000, 3), (10_001, 4), (12_001, 6)):
        s.train = train
        assert sg.pulse_count(s) == pulses, train
        assert len(sg.timeline(s, 100)) == 4 * pulses
    s.train = 0
    assert sg.pulse_count(s) == 0 and sg.train_words(s) == 0


def test_delays_shift_channels_exactly():
    base = Settings(width=100, gap=20, period=2000, burst_count=2, burst_period=9000)
    ref = sg.timeline(base, 6)
    for delay in (8, 9, 1234, 5 * SEC, sg.DELAY_MAX):
        s = base.copy()
        s.delay = delay
        assert sg.timeline(s, 6) == [(t + delay, a, b) for t, a, b in ref]
        words, _, _ = stream(s, max_words=32)
        assert play(words)[0][: len(ref)] == sg.timeline(s, 6)


def test_record_into_buffer():
    from array import array

    s = Settings(period=1800 * SEC, burst_count=2, burst_period=3600 * SEC)
    buf = array("I", [0] * sg.record_len(s))
    assert sg.record_into(s, buf) == len(buf) == sg.RECORD_MAX == 1024
    assert list(buf) == sg.record(s)
    with pytest.raises(ValueError):
        sg.record_len(Settings(width=1))


# --------------------------------------------------------------------------- executor


@SLOW
@given(small_settings(), st.integers(1, 6))
def test_executor_plays_the_timeline(s, pulses):
    words, complete, covered = stream(s, max_words=600)
    if complete:
        expect = sg.timeline(s, 1 << 30)
        sm, got = run(s, expect[-1][0] + 10 * SEC)
        assert got == expect
        # The train ended on a rest word: the machine waits at the pull.
        assert sm.stalled and sm.pc == 0 and not sm.tx
    else:
        expect = sg.timeline(s, min(pulses, covered))
        _, got = run(s, expect[-1][0] + 1)
        assert got == expect


def test_executor_relocated_program():
    s = Settings(width=50, gap=10, period=400, burst_count=2, burst_period=1200, delay=77)
    expect = sg.timeline(s, 10)
    for offset in (0, 16):
        assert run(s, expect[-1][0] + 1, offset=offset)[1] == expect


def _split_pulses(s, tl):
    """Timeline entries grouped by pulse: each group starts a pulse and ends at rest."""
    per = 2 if s.shape == sg.MON else (4 if s.gap else 3)
    assert len(tl) % per == 0
    return [tl[i : i + per] for i in range(0, len(tl), per)]


def _level_at(got, cycle):
    """Pin levels (a, b) after the executor's changes up to and including ``cycle``."""
    level = (0, 0)
    for c, a, b in got:
        if c > cycle:
            break
        level = (a, b)
    return level


def _check_disarmed(s, inputs, n_pulses):
    """Play s undisturbed and with ``inputs``; compare pulse by pulse. Returns the skipped ones."""
    tl = sg.timeline(s, n_pulses)
    horizon = tl[-1][0] + 1
    # The reference: the same lead never disarmed, on the executor.
    _, ref = run(s, horizon)
    assert ref == tl
    pulses = _split_pulses(s, ref)
    starts = [p[0][0] for p in pulses]
    played = [inputs.level(ARM, start - ARM_LEAD) == 1 for start in starts]
    sm, got = run(s, horizon, inputs=inputs)
    # Every pulse latched armed comes at exactly the reference cycles; the others are rest.
    assert got == [e for k, p in enumerate(pulses) if played[k] for e in p]
    # The pins stay low from each skipped pulse's start until the next pulse start.
    for k, start in enumerate(starts):
        if played[k]:
            continue
        end = starts[k + 1] if k + 1 < len(starts) else horizon
        assert _level_at(got, start) == (0, 0)
        assert not [e for e in sm.edges if start <= e[0] < end]
    # The cycle model agrees.
    words, _, _ = stream(s, max_words=400)
    model = play(words, arm=lambda c: inputs.level(ARM, c))[0]
    assert got == [e for e in model if e[0] < horizon]
    return [k for k in range(len(starts)) if not played[k]]


def test_disarm_and_rearm_keep_the_phase():
    s = Settings(width=100, gap=20, period=1000)
    assert len(sg.record(s)) == 4
    tl = sg.timeline(s, 10)
    ends = [tl[4 * k + 3][0] for k in range(10)]
    # ARM drops after pulse 1 and returns after pulse 4 would have ended: pulses
    # 2, 3, 4 rest and pulse 5 on comes exactly where it would have come anyway.
    inputs = StepInputs([(ends[1] + 1, ARM, 0), (ends[4] + 1, ARM, 1)], {ARM: 1, INTERLOCK: 1})
    assert _check_disarmed(s, inputs, 10) == [2, 3, 4]
    sm, got = run(s, tl[-1][0] + 1, inputs=inputs)
    assert got == tl[:8] + tl[20:]
    assert not sm.stalled and sm.dma.remaining > 0
    # A drop during a pulse lets it complete; ARM read exactly at a pulse's
    # latch cycle decides that pulse.
    latch = [tl[4 * k][0] - ARM_LEAD for k in range(10)]
    inputs = StepInputs(
        [
            (tl[4 * 3 + 1][0], ARM, 0),
            (latch[6], ARM, 1),
            (latch[8], ARM, 0),
            (latch[8] + 1, ARM, 1),
        ],
        {ARM: 1, INTERLOCK: 1},
    )
    assert _check_disarmed(s, inputs, 10) == [4, 5, 8]


@st.composite
def disarm_spans(draw, latches, horizon):
    """ARM low over 1 to 3 spans at random cycles, many of them at or next to a pulse's ARM read.

    ARM is high before the first span and after the last: the lead is re-armed.
    """
    near = st.builds(lambda c, d: max(1, c + d), st.sampled_from(latches), st.integers(-2, 2))
    cycle = st.one_of(st.integers(1, horizon), near)
    spans = draw(st.integers(1, 3))
    cycles = sorted(draw(st.lists(cycle, min_size=2 * spans, max_size=2 * spans, unique=True)))
    changes = [(c, ARM, i % 2) for i, c in enumerate(cycles)]  # low, high, low, high, ...
    return StepInputs(changes, {ARM: 1, INTERLOCK: 1})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_settings(), st.integers(2, 12), st.data())
def test_disarming_for_any_pulses_keeps_the_phase(s, pulses, data):
    if s.train and sg.pulse_count(s) < pulses:
        s.train = 0  # pulses after the re-arm are the point here; train ends are tested above
    _, _, covered = stream(s, max_words=400)
    tl = sg.timeline(s, min(pulses, covered))
    starts = [p[0][0] for p in _split_pulses(s, tl)]
    inputs = data.draw(disarm_spans([c - ARM_LEAD for c in starts], tl[-1][0]))
    _check_disarmed(s, inputs, len(starts))


def test_arm_low_before_the_first_pulse():
    s = Settings(width=100, gap=0, period=1000, delay=500)
    sm, got = run(s, 20_000, inputs=ConstantInputs({ARM: 0, INTERLOCK: 1}))
    assert got == [] and sm.dma.remaining > 0


@pytest.mark.parametrize("where", ["phase1", "gap", "phase2", "rest"])
def test_interlock_open_stops_for_good(where):
    s = Settings(width=100, gap=20, period=1000, burst_count=2, burst_period=3000)
    tl = sg.timeline(s, 8)
    k = 3  # the pulse during which the interlock opens
    t1, t_gap, t2, t_end = (e[0] for e in tl[4 * k : 4 * k + 4])
    cycle = {"phase1": t1 + 1, "gap": t_gap + 5, "phase2": t2 + 50, "rest": t_end + 1}[where]
    inputs = StepInputs(
        [(cycle, INTERLOCK, 0), (cycle + 5000, INTERLOCK, 1)], {ARM: 1, INTERLOCK: 1}
    )
    sm, got = run(s, tl[-1][0] + 10 * SEC, inputs=inputs)
    # The pulse under way completes both phases; none starts after.
    assert got == tl[: 4 * k + 4]
    assert sm.pc == PARK and sm.tx  # parked, words left unplayed
    assert play(stream(s, 64)[0], il=lambda c: inputs.level(INTERLOCK, c)) == (got, True)


def test_interlock_open_at_enable():
    s = Settings()
    sm, got = run(s, 10_000, inputs=ConstantInputs({ARM: 1, INTERLOCK: 0}))
    assert got == [] and sm.pc == PARK


@st.composite
def input_changes(draw, horizon):
    changes = []
    for pin in (ARM, INTERLOCK):
        for cycle in draw(st.lists(st.integers(0, horizon), max_size=6)):
            changes.append((cycle, pin, draw(st.integers(0, 1))))
    return changes


@SLOW
@given(small_settings(), st.data())
def test_executor_matches_the_model_under_random_inputs(s, data):
    words, _, _ = stream(s, max_words=200)
    horizon_edges, _ = play(words)
    horizon = horizon_edges[-1][0] if horizon_edges else 1000
    changes = data.draw(input_changes(horizon))
    initial = {ARM: data.draw(st.integers(0, 1)), INTERLOCK: data.draw(st.integers(0, 1))}
    inputs = StepInputs(changes, initial)
    expect, dead = play(
        words,
        arm=lambda c: inputs.level(ARM, c),
        il=lambda c: inputs.level(INTERLOCK, c),
    )
    rec = sg.record(s)
    count = len(words) - len(sg.delay_words(s))
    sm = make_sm(inputs)
    for word in sg.delay_words(s):
        sm.put(word)
    sm.attach_dma(DmaFeed(rec, ring_words=len(rec), count=count))
    sm.set_enabled(True)
    sm.run_until(horizon + 20 * SEC)
    assert levels(sm.edges) == expect
    assert (sm.pc == PARK) == dead


# --------------------------------------------------------------------------- MicroPython


MP_SCRIPT = """
import sys
import rp2_asm


class _Rp2:
    pass


rp2 = _Rp2()
rp2.asm_pio = rp2_asm.asm_pio
rp2.PIO = rp2_asm.PIOConst
sys.modules["rp2"] = rp2  # the simulated rp2 proper would look for the supervisor

from stim import pulse_program as pp
from stim import segments as sg

print(list(pp.pulse_program[0]), pp.pulse_program[3], pp.pulse_program[4])
cases = (
    sg.Settings(),
    sg.Settings(period=3600 * 125000000, delay=sg.DELAY_MAX, train=10**13),
    sg.Settings(width=8, gap=0, period=36, shape="MON", polarity=1, train=99),
    sg.Settings(burst_count=5, burst_period=125000000, train=3 * 125000000 + 1, delay=9),
    sg.Settings(width=7),
)
for s in cases:
    why = sg.conflict(s)
    if why is None:
        print(sg.record(s), sg.delay_words(s), sg.train_words(s), sg.timeline(s, 7))
    else:
        print(why)
"""


def _micropython():
    for candidate in (os.environ.get("MICROPYTHON"), shutil.which("micropython")):
        if candidate:
            return candidate
    fallback = Path("/tmp/v/bin/micropython")
    return str(fallback) if fallback.exists() else None


def test_same_results_under_micropython():
    binary = _micropython()
    if binary is None:
        pytest.skip("no MicroPython interpreter found")
    outputs = []
    path = os.pathsep.join([str(ROOT / "board"), str(MP_DIR)])
    for command, env in (
        ([binary, "-X", "heapsize=192K", "-c", MP_SCRIPT], dict(os.environ, MICROPYPATH=path)),
        ([sys.executable, "-c", MP_SCRIPT], dict(os.environ, PYTHONPATH=path)),
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr + done.stdout
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[-1] == "pulse width below minimum"
