"""Cycle compiler of the lead channels: pulse settings -> PIO segment words.

A lead's state machine (``stim.pulse_program``) plays 32-bit segment words;
each puts one pin pattern on the outputs and holds it for a counted number of
cycles. This module turns :class:`Settings` (every time in whole 125 MHz
system-clock cycles, 8 ns) into those words. Pure integer arithmetic: no
hardware access, so the host tests run it under CPython too.

Use::

    s = Settings(width=25_000, gap=6_250, period=6_250_000)
    why = conflict(s)            # None, or the reason (SCPI -221 detail)
    if why is None:
        ring = record(s)         # one period, burst period or table cycle; len a power of two
        first = delay_words(s)   # put into the TX FIFO before the DMA starts (<= 8 words)
        count = train_words(s)   # DMA transfers over the ring; 0 = forever

``record_len`` and ``record_into`` write the record into a preallocated
buffer (e.g. an ``array('I')`` view of the aligned DMA ring) without building
a list of big ints on the heap.

Word layout (LSB first): bit 0 pulse-start flag, bits 1-2 pin pattern
(``PAT_A`` = pin A, ``PAT_B`` = pin B, 0 = rest), bits 3-31 loop count y.
A word's pattern stays on the pins for ``y + POST_FIXED + PRE`` cycles, where
PRE is ``PRE_START`` if the next word starts a pulse, else ``PRE_PLAIN``.
Durations longer than one word can hold, and the padding of a record to a
power-of-two length, are made by splitting a segment into several words of
the same pattern (flag 0 on the continuations): the pins do not move at the
joins.

Timing: cycle 0 is the cycle the state machine is enabled. An undelayed
channel's first pulse starts at ``FIRST_PULSE`` (= PRE_START - 1); ``delay``
moves it later by exactly that many cycles, so channels enabled in the same
cycle differ exactly by their delays. Biphasic pulses are phase 1 (width) on
the polarity's pin, gap at rest (left out when 0), phase 2 (same width) on the
other pin; monophasic pulses are phase 1 alone. Period is start-to-start.
With ``burst_count`` > 1, that many pulses follow at ``period`` spacing and
the next burst starts ``burst_period`` after the first pulse of the previous.
A finite ``train`` plays every pulse that starts less than ``train`` cycles
after the first pulse, each one complete.

List mode (``list_on`` = 1) plays a custom pulse table instead: ``table``
is the flat sequence (onset0, width0, onset1, width1, ...) of 1 to TABLE_MAX
pulses (flat, because a tuple per pulse would cost RAM), repeating every
``period``. Table cycle k starts at FIRST_PULSE + delay + k * period, and
pulse j starts onset_j cycles after that: a pulse of phase width width_j
with the lead's shape, gap and polarity (``width``, ``burst_count`` and
``burst_period`` do not apply). Onsets increase; each pulse is followed by
at least MIN_OFF cycles of rest before the next onset; the last pulse ends
within the period and at least MIN_OFF cycles before the next cycle's first
pulse. The record is one table cycle from its first pulse, so the delay
words hold delay + onset_0 (0, or MIN_DELAY..DELAY_MAX). A finite ``train``
plays every pulse that starts less than ``train`` cycles after the first
table cycle's start (at least one: train > onset_0), each one complete::

    s = Settings(period=1_250_000, table=(0, 2_500, 250_000, 5_000), list_on=1)
"""

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731

# The cycle budget of stim.pulse_program (duplicated so this module imports
# without rp2; the tests check that both agree and measure them on the program).
PRE_PLAIN = const(5)
PRE_START = const(9)
POST_FIXED = const(3)
Y_MAX = const(0x1FFFFFFF)

FLAG_START = const(1)
PAT_REST = const(0)
PAT_A = const(1)
PAT_B = const(2)

BIPH = "BIPH"
MON = "MON"

# Shortest segments: y = 0. Every phase and gap is followed by a plain
# segment; every rest is followed by a pulse start.
MIN_PLAIN = const(PRE_PLAIN + POST_FIXED)  # 8
MIN_BEFORE_START = const(PRE_START + POST_FIXED)  # 12
MIN_WIDTH = const(MIN_PLAIN)  # 8
MIN_GAP = const(MIN_PLAIN)  # 8
# A rest before each pulse is required: it is what the pins show while the
# next pulse start checks the interlock (and what a disarmed pulse start
# relies on), and without one a monophasic train would be a DC level.
MIN_OFF = const(MIN_BEFORE_START)  # 12
# The delay words hold delay + PRE_START - PRE_PLAIN cycles before a pulse start.
MIN_DELAY = const(MIN_BEFORE_START - PRE_START + PRE_PLAIN)  # 8, see delay_words

TABLE_MAX = const(64)  # pulses in a list-mode table
RECORD_MAX = const(1024)  # words in a record (stim.ringpool.RING_MAX: a 4 KiB DMA ring)
DELAY_WORDS_MAX = const(8)  # the joined TX FIFO holds them all before the DMA starts
# Longest segment followed by a plain one (not const: big for a Pico small int).
PIECE_MAX = Y_MAX + POST_FIXED + PRE_PLAIN
DELAY_MAX = DELAY_WORDS_MAX * PIECE_MAX  # 4_294_967_352 cycles, 34.36 s
COUNT_MAX = 0xFFFFFFFF  # a DMA transfer count is 32 bits
FIRST_PULSE = const(PRE_START - 1)  # 8: first pin write of an undelayed channel

# Kinds of the segments of a plan, in the order padding prefers to split them.
_REST = const(0)
_GAP = const(1)
_PHASE = const(2)

_TOO_MANY = "record needs more than 1024 words"


class Settings:
    """Pulse settings of one lead, every time in whole system-clock cycles."""

    __slots__ = (
        "width",
        "gap",
        "period",
        "shape",
        "polarity",
        "burst_count",
        "burst_period",
        "train",
        "delay",
        "table",
        "list_on",
    )

    def __init__(
        self,
        width=25000,
        gap=6250,
        period=6250000,
        shape=BIPH,
        polarity=0,
        burst_count=1,
        burst_period=0,
        train=0,
        delay=0,
        table=None,
        list_on=0,
    ):
        self.width = width  # each phase: 200 us
        self.gap = gap  # interphase gap (biphasic only): 50 us
        self.period = period  # pulse start to pulse start: 20 Hz
        self.shape = shape  # BIPH or MON
        self.polarity = polarity  # 0: phase 1 on pin A; 1: on pin B
        self.burst_count = burst_count  # pulses per burst; 1 = no bursts
        self.burst_period = burst_period  # burst start to burst start (bursts only)
        self.train = train  # 0 = continuous, else train duration
        self.delay = delay  # first pulse later by this much
        self.table = table  # None or (onset0, width0, onset1, width1, ...) of list mode
        self.list_on = list_on  # 1: play the table (list mode)

    def copy(self):
        s = Settings()
        for name in Settings.__slots__:
            setattr(s, name, getattr(self, name))
        return s

    def __repr__(self):
        return (
            "Settings("
            + ", ".join("{}={!r}".format(n, getattr(self, n)) for n in Settings.__slots__)
            + ")"
        )


def _plen(s, width):
    return width if s.shape == MON else 2 * width + s.gap


def pulse_cycles(s):
    """Length of one pulse: 2 * width + gap (biphasic) or width (monophasic).

    In list mode, the longest pulse of the table.
    """
    w = s.width
    if s.list_on and s.table:
        w = 0
        for i in range(1, len(s.table), 2):
            if s.table[i] > w:
                w = s.table[i]
    return _plen(s, w)


def _pulse(s, j):
    """(onset from the record's start, width) of pulse j of a record."""
    return (s.table[2 * j], s.table[2 * j + 1]) if s.list_on else (j * s.period, s.width)


def _cycle_of_burst(s):
    """Start-to-start spacing of records: the burst period, or the period (bursts off, list)."""
    return s.burst_period if s.burst_count > 1 and not s.list_on else s.period


def _min_pieces(d, pre_next):
    # k words hold at most (k - 1) * PIECE_MAX + Y_MAX + POST_FIXED + pre_next cycles.
    k = (d + PRE_PLAIN - pre_next + PIECE_MAX - 1) // PIECE_MAX
    return k if k > 1 else 1


def _max_pieces(d, pre_next):
    # k words need at least (k - 1) * MIN_PLAIN + POST_FIXED + pre_next cycles.
    return (d - POST_FIXED - pre_next) // MIN_PLAIN + 1


def _check_fields(s):
    """Reason why the fields alone are impossible, or None."""
    for name in Settings.__slots__:
        if name != "shape" and name != "table" and not isinstance(getattr(s, name), int):
            return name + " must be whole cycles"
    if s.shape != BIPH and s.shape != MON:
        return "shape must be BIPH or MON"
    if s.polarity != 0 and s.polarity != 1:
        return "polarity must be 0 or 1"
    if s.width < MIN_WIDTH:
        return "pulse width below minimum"
    if s.shape == BIPH and (s.gap < 0 or 0 < s.gap < MIN_GAP):
        return "interphase gap below minimum"
    pulse = _plen(s, s.width)
    if not s.list_on:
        if pulse > s.period:
            return "pulse longer than period"
        if s.period - pulse < MIN_OFF:
            return "off time between pulses below minimum"
    if s.burst_count < 1:
        return "burst count below 1"
    if s.burst_count > 1 and not s.list_on:
        span = (s.burst_count - 1) * s.period + pulse
        if span > s.burst_period:
            return "burst longer than burst period"
        if s.burst_period - span < MIN_OFF:
            return "off time between bursts below minimum"
    if s.train < 0:
        return "train duration below 0"
    name = "delay"
    if s.list_on:
        t = s.table
        if not t or len(t) > 2 * TABLE_MAX or len(t) % 2:
            return "table needs 1 to 64 pulses"
        end = -MIN_OFF  # a first onset below 0 fails like a pulse too close to the previous
        for i in range(0, len(t), 2):
            onset = t[i]
            width = t[i + 1]
            if not (isinstance(onset, int) and isinstance(width, int)):
                return "table must be whole cycles"
            if width < MIN_WIDTH:
                return "pulse width below minimum"
            # Unsorted, overlapping, or less than MIN_OFF of rest before the next onset.
            if onset - end < MIN_OFF:
                return "pulses unsorted or too close"
            end = onset + _plen(s, width)
        if end > s.period or s.period + t[0] - end < MIN_OFF:
            return "last pulse too near period end"
        if s.train and s.train <= t[0]:
            return "train ends before first pulse"
        name = "delay plus first onset"
    d = s.delay + _pulse(s, 0)[0]
    if s.delay < 0 or 0 < d < MIN_DELAY:
        return name + " below minimum"
    if d > DELAY_MAX:
        return name + " too long"
    return None


def _segments(s):
    """The segments of one record in order: (duration, pattern, flag, kind, PRE of the next).

    Generated one at a time, so a plan takes no heap however many segments it has.
    """
    count = len(s.table) // 2 if s.list_on else s.burst_count
    first = PAT_B if s.polarity else PAT_A
    # Every rest ends at the next pulse start; the last at the next record's first.
    wrap = _cycle_of_burst(s) + _pulse(s, 0)[0]
    for j in range(count):
        onset, width = _pulse(s, j)
        yield width, first, FLAG_START, _PHASE, PRE_PLAIN
        if s.shape == BIPH:
            if s.gap:
                yield s.gap, PAT_REST, 0, _GAP, PRE_PLAIN
            yield width, first ^ 3, 0, _PHASE, PRE_PLAIN
        nxt = _pulse(s, j + 1)[0] if j + 1 < count else wrap
        yield nxt - onset - _plen(s, width), PAT_REST, 0, _REST, PRE_START


def _plan(s):
    """[record length, extra pieces per kind (3), room per kind (3)], or the reason the
    record is impossible. Assumes the fields passed _check_fields.

    Each segment takes its fewest words (_min_pieces); the DMA read ring needs a
    power-of-two length, made up by splitting segments further: rests first (the
    last one, between bursts, is the longest), then gaps, then phases, each kind
    from the end of the record (see _walk). The room of a segment is how many more
    words it can be split into.
    """
    plan = [0] * 7
    total = 0
    for d, _, _, kind, pre in _segments(s):
        k = _min_pieces(d, pre)
        total += k
        if total > RECORD_MAX:
            return _TOO_MANY
        room = _max_pieces(d, pre) - k
        if room > 0:
            plan[4 + kind] += room
    size = 1
    while size < total:
        size <<= 1
    plan[0] = size
    extra = size - total
    for kind in (_REST, _GAP, _PHASE):
        add = plan[4 + kind] if plan[4 + kind] < extra else extra
        plan[1 + kind] = add
        extra -= add
    if extra:
        return "period too short to pad the record"
    return plan


def _walk(s, plan, put=None, stop=-1):
    """Write the record's words through put(index, word) and return their number; with
    stop >= 0, return the index just past the first word of the rest after pulse stop."""
    before = [0, 0, 0]  # room of the earlier segments of each kind
    pos = 0
    for d, pat, flag, kind, pre in _segments(s):
        k = _min_pieces(d, pre)
        room = _max_pieces(d, pre) - k
        if room < 0:
            room = 0
        # A kind's extra words go to its segments from the record's end: this one gets
        # what the later ones (room plan[4 + kind] - before[kind] - room) leave of them.
        add = plan[1 + kind] - plan[4 + kind] + before[kind] + room
        before[kind] += room
        if add > room:
            add = room
        if add > 0:
            k += add
        if kind == _REST and stop >= 0:
            if not stop:
                return pos + 1
            stop -= 1
        if put is None:
            pos += k
        else:
            pos = _emit(d, pat, flag, pre, k, put, pos)
    return pos


def _emit(d, pat, flag, pre, k, put, pos):
    """Write one segment as k words through put(index, word); return the next index."""
    # Every join inside the segment is followed by a plain continuation word.
    q, r = divmod(d - (k - 1) * MIN_PLAIN - POST_FIXED - pre, k)
    low = pat << 1
    for i in range(k):
        y = q + 1 if i < r else q
        word = y << 3 | low
        if i == 0:
            word |= flag
        put(pos, word)
        pos += 1
    return pos


def _resolve(s):
    """(None, plan of one record) for possible settings, else (reason, None)."""
    why = _check_fields(s)
    if why is not None:
        return why, None
    plan = _plan(s)
    if isinstance(plan, str):
        return plan, None
    if s.train and _train_words(s, plan) > COUNT_MAX:
        return "train too long", None
    return None, plan


def _plan_or_raise(s):
    why, plan = _resolve(s)
    if why is not None:
        raise ValueError(why)
    return plan


def limit_views(s):
    """The settings the safety limits judge (``stim.limits.check`` each one): s itself,
    or in list mode one regular-mode copy per table pulse, with that pulse's width and
    as period its onset-to-onset spacing to the next pulse (the last one's to the
    first pulse of the next table cycle). Assumes conflict(s) is None."""
    if not s.list_on:
        yield s
        return
    t = s.table
    n = len(t)
    for i in range(0, n, 2):
        v = s.copy()
        v.list_on = 0
        v.burst_count = 1
        v.width = t[i + 1]
        v.period = (t[i + 2] if i + 2 < n else s.period + t[0]) - t[i]
        yield v


def conflict(s):
    """Why these settings cannot be played (message for SCPI -221), or None if they can."""
    return _resolve(s)[0]


def record_len(s):
    """Number of words of the record (a power of two); ValueError on a conflict."""
    return _plan_or_raise(s)[0]


def record_into(s, buf):
    """Write the record into buf[0:record_len(s)] (e.g. an array('I')); return its length."""

    def put(i, word):
        buf[i] = word

    return _walk(s, _plan_or_raise(s), put)


def record(s):
    """The repeating record as a list of words: one period, burst period or table cycle.

    Its length is a power of two (2..1024) and its first word starts a pulse.
    Raises ValueError with the conflict() reason when the settings are impossible.
    """
    out = []

    def put(i, word):
        out.append(word)

    _walk(s, _plan_or_raise(s), put)
    return out


def delay_words(s):
    """Words played once before the first record: [] without delay, else at most 8 rest words.

    They are plain segments (X must be nonzero, see stim.pulse_program) and
    stretch the first pin write from cycle PRE_PLAIN - 1 to FIRST_PULSE + delay:
    together they last delay + PRE_START - PRE_PLAIN cycles, at least
    MIN_BEFORE_START, hence the minimum of MIN_DELAY = 8 cycles of delay.
    """
    _plan_or_raise(s)
    d = s.delay + _pulse(s, 0)[0]
    if not d:
        return []
    d += PRE_START - PRE_PLAIN
    out = []

    def put(i, word):
        out.append(word)

    _emit(d, PAT_REST, 0, PRE_START, _min_pieces(d, PRE_START), put, 0)
    return out


def pulse_count(s):
    """Pulses of a finite train (those starting before ``train`` cycles); 0 for continuous."""
    if not s.train:
        return 0
    r, j = _last_pulse(s)
    return r * (len(s.table) // 2 if s.list_on else s.burst_count) + j + 1


def _last_pulse(s):
    """(record, pulse within the record) of the last pulse of a finite train."""
    last = s.train - 1  # the latest start offset that still counts
    r = (last - _pulse(s, 0)[0]) // _cycle_of_burst(s)
    last -= r * _cycle_of_burst(s)
    if s.list_on:
        j = 0
        while 2 * j + 2 < len(s.table) and s.table[2 * j + 2] <= last:
            j += 1
        return r, j
    j = last // s.period
    if j > s.burst_count - 1:
        j = s.burst_count - 1
    return r, j


def _train_words(s, plan):
    r, j = _last_pulse(s)
    # The first word of the rest after the last pulse takes the pins back to rest; the
    # state machine then waits on an empty FIFO with the outputs at rest.
    return r * plan[0] + _walk(s, plan, None, j)


def train_words(s):
    """Record words to play in total (the DMA transfer count): 0 = forever.

    A finite train ends on the first rest word after its last pulse.
    """
    plan = _plan_or_raise(s)
    if not s.train:
        return 0
    return _train_words(s, plan)


def timeline(s, n):
    """Intended pin levels, the oracle of the tests: [(cycle, pin_a, pin_b), ...].

    One entry per change of level over the first n pulses (fewer if the train
    has fewer); levels are (0, 0) before the first entry. Cycle 0 is the
    cycle the state machine is enabled.
    """
    if s.train:
        total = pulse_count(s)
        if total < n:
            n = total
    if s.polarity:
        on1, on2 = (0, 1), (1, 0)
    else:
        on1, on2 = (1, 0), (0, 1)
    count = len(s.table) // 2 if s.list_on else s.burst_count
    spacing = _cycle_of_burst(s)
    out = []
    for k in range(n):
        onset, width = _pulse(s, k % count)
        t = FIRST_PULSE + s.delay + (k // count) * spacing + onset
        out.append((t, on1[0], on1[1]))
        t += width
        if s.shape == BIPH:
            if s.gap:
                out.append((t, 0, 0))
                t += s.gap
            out.append((t, on2[0], on2[1]))
            t += width
        out.append((t, 0, 0))
    return out
