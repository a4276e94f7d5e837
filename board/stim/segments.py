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
        ring = record(s)         # one period or burst period; len is a power of two
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

RECORD_MAX = const(2048)  # words in a record (DMA read ring of at most 8 KiB)
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

# Fields of one planned segment (a list, so padding can update its piece count).
_D = const(0)  # duration in cycles
_PAT = const(1)
_FLAG = const(2)
_KIND = const(3)
_PRE_NEXT = const(4)  # PRE of the segment that follows
_PIECES = const(5)  # words it is split into

_TOO_MANY = "record needs more than 2048 words"


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


def pulse_cycles(s):
    """Length of one pulse: 2 * width + gap (biphasic) or width (monophasic)."""
    if s.shape == MON:
        return s.width
    return 2 * s.width + s.gap


def _cycle_of_burst(s):
    """Start-to-start spacing of records: the burst period, or the period without bursts."""
    return s.burst_period if s.burst_count > 1 else s.period


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
        if name != "shape" and not isinstance(getattr(s, name), int):
            return name + " must be whole cycles"
    if s.shape != BIPH and s.shape != MON:
        return "shape must be BIPH or MON"
    if s.polarity != 0 and s.polarity != 1:
        return "polarity must be 0 or 1"
    if s.width < MIN_WIDTH:
        return "pulse width below minimum"
    if s.shape == BIPH and (s.gap < 0 or 0 < s.gap < MIN_GAP):
        return "interphase gap below minimum"
    pulse = pulse_cycles(s)
    if pulse > s.period:
        return "pulse longer than period"
    if s.period - pulse < MIN_OFF:
        return "off time between pulses below minimum"
    if s.burst_count < 1:
        return "burst count below 1"
    if s.burst_count > 1:
        span = (s.burst_count - 1) * s.period + pulse
        if span > s.burst_period:
            return "burst longer than burst period"
        if s.burst_period - span < MIN_OFF:
            return "off time between bursts below minimum"
    if s.train < 0:
        return "train duration below 0"
    if s.delay < 0 or 0 < s.delay < MIN_DELAY:
        return "delay below minimum"
    if s.delay > DELAY_MAX:
        return "delay too long"
    return None


def _pulse_segments(segs, s, rest):
    first = PAT_B if s.polarity else PAT_A
    segs.append([s.width, first, FLAG_START, _PHASE, PRE_PLAIN, 1])
    if s.shape == BIPH:
        if s.gap:
            segs.append([s.gap, PAT_REST, 0, _GAP, PRE_PLAIN, 1])
        segs.append([s.width, first ^ 3, 0, _PHASE, PRE_PLAIN, 1])
    # Every rest ends at the next pulse start (the next record's first word at the end).
    segs.append([rest, PAT_REST, 0, _REST, PRE_START, 1])


def _plan(s):
    """The segments of one record with their piece counts, or the reason it is impossible.

    Assumes the fields passed _check_fields.
    """
    count = s.burst_count
    per_pulse = 2 if s.shape == MON else (4 if s.gap else 3)
    if count * per_pulse > RECORD_MAX:
        return _TOO_MANY
    pulse = pulse_cycles(s)
    rest = s.period - pulse
    last_rest = _cycle_of_burst(s) - (count - 1) * s.period - pulse
    segs = []  # type: list
    for j in range(count):
        _pulse_segments(segs, s, last_rest if j == count - 1 else rest)
    total = 0
    for seg in segs:
        k = _min_pieces(seg[_D], seg[_PRE_NEXT])
        seg[_PIECES] = k
        total += k
        if total > RECORD_MAX:
            return _TOO_MANY
    size = 1
    while size < total:
        size <<= 1
    extra = size - total
    # The DMA read ring needs a power-of-two length: split rests first (the
    # last one, between bursts, is the longest), then gaps, then phases.
    for kind in (_REST, _GAP, _PHASE):
        i = len(segs) - 1
        while extra and i >= 0:
            seg = segs[i]
            if seg[_KIND] == kind:
                room = _max_pieces(seg[_D], seg[_PRE_NEXT]) - seg[_PIECES]
                if room > 0:
                    add = room if room < extra else extra
                    seg[_PIECES] += add
                    extra -= add
            i -= 1
    if extra:
        return "period too short to pad the record"
    return segs


def _emit(seg, put, pos):
    """Write the words of one planned segment through put(index, word); return the next index."""
    k = seg[_PIECES]
    # Every join inside the segment is followed by a plain continuation word.
    total_y = seg[_D] - (k - 1) * MIN_PLAIN - POST_FIXED - seg[_PRE_NEXT]
    q, r = divmod(total_y, k)
    low = seg[_PAT] << 1
    for i in range(k):
        y = q + 1 if i < r else q
        word = y << 3 | low
        if i == 0:
            word |= seg[_FLAG]
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


def conflict(s):
    """Why these settings cannot be played (message for SCPI -221), or None if they can."""
    return _resolve(s)[0]


def record_len(s):
    """Number of words of the record (a power of two); ValueError on a conflict."""
    n = 0
    for seg in _plan_or_raise(s):
        n += seg[_PIECES]
    return n


def record_into(s, buf):
    """Write the record into buf[0:record_len(s)] (e.g. an array('I')); return its length."""

    def put(i, word):
        buf[i] = word

    n = 0
    for seg in _plan_or_raise(s):
        n = _emit(seg, put, n)
    return n


def record(s):
    """The repeating record as a list of words: one period, or one burst period.

    Its length is a power of two (2..2048) and its first word starts a pulse.
    Raises ValueError with the conflict() reason when the settings are impossible.
    """
    out = []

    def put(i, word):
        out.append(word)

    n = 0
    for seg in _plan_or_raise(s):
        n = _emit(seg, put, n)
    return out


def delay_words(s):
    """Words played once before the first record: [] without delay, else at most 8 rest words.

    They are plain segments (X must be nonzero, see stim.pulse_program) and
    stretch the first pin write from cycle PRE_PLAIN - 1 to FIRST_PULSE + delay:
    together they last delay + PRE_START - PRE_PLAIN cycles, at least
    MIN_BEFORE_START, hence the minimum of MIN_DELAY = 8 cycles of delay.
    """
    _plan_or_raise(s)
    if not s.delay:
        return []
    d = s.delay + PRE_START - PRE_PLAIN
    seg = [d, PAT_REST, 0, _REST, PRE_START, _min_pieces(d, PRE_START)]
    out = []

    def put(i, word):
        out.append(word)

    _emit(seg, put, 0)
    return out


def pulse_count(s):
    """Pulses of a finite train (those starting before ``train`` cycles); 0 for continuous."""
    if not s.train:
        return 0
    r, j = _last_pulse(s)
    return r * s.burst_count + j + 1


def _last_pulse(s):
    """(record, pulse within the record) of the last pulse of a finite train."""
    last = s.train - 1  # the latest start offset that still counts
    r = last // _cycle_of_burst(s)
    j = (last - r * _cycle_of_burst(s)) // s.period
    if j > s.burst_count - 1:
        j = s.burst_count - 1
    return r, j


def _train_words(s, plan):
    r, j = _last_pulse(s)
    size = 0
    rests = 0
    stop = None
    for seg in plan:
        if seg[_KIND] == _REST:
            if rests == j:
                # The first word of the rest after the last pulse takes the
                # pins back to rest; the state machine then waits on an empty
                # FIFO with the outputs at rest.
                stop = size + 1
            rests += 1
        size += seg[_PIECES]
    return r * size + stop


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
    count = s.burst_count
    spacing = _cycle_of_burst(s)
    out = []
    for k in range(n):
        t = FIRST_PULSE + s.delay + (k // count) * spacing + (k % count) * s.period
        out.append((t, on1[0], on1[1]))
        t += s.width
        if s.shape == BIPH:
            if s.gap:
                out.append((t, 0, 0))
                t += s.gap
            out.append((t, on2[0], on2[1]))
            t += s.width
        out.append((t, 0, 0))
    return out
