"""List mode of the cycle compiler (stim.segments): a table of pulses, each with its own onset
and width, repeating every period.

The same layers of evidence as test_segments.py, whose word helpers, cycle model (``play``)
and executor harness (``run``) are used here:

* ``possible_list`` decides from the word timing alone whether a table can be played, and
  ``conflict`` agrees with it for random tables over the whole ranges;
* ``expected`` writes the pin levels out from the definition of list mode (onset, width, shape,
  gap, polarity, period, delay, train), and both ``timeline()`` and the words played by the
  cycle model reproduce it exactly;
* the assembled program plays random tables on the cycle-exact PIO executor with a DMA feed
  and produces exactly those levels;
* ``reference_record`` builds the record with the padding rule written out on explicit lists:
  the words of every possible setting, regular or list, are exactly its words.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stim import segments as sg
from stim.segments import Settings

HERE = Path(__file__).resolve().parent


def _helpers() -> ModuleType:
    """test_segments.py as a module of helpers (its tests are not collected from here)."""
    name = "_segments_test_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "test_segments.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _helpers()
SEC = H.SEC
Y_MAX = H.Y_MAX
MIN_START = H.MIN_START  # shortest hold before a pulse start: the minimum rest
MANY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pairs(s):
    t = s.table
    return [(t[i], t[i + 1]) for i in range(0, len(t), 2)]


def plen(s, width):
    return width if s.shape == sg.MON else 2 * width + s.gap


def table_settings(pulses, period, **kw):
    flat = tuple(c for p in pulses for c in p)
    return Settings(period=period, table=flat, list_on=1, **kw)


# --------------------------------------------------------------------------- oracles


def starts(s, n):
    """(cycle, width) of the first n pulses by the definition: table cycle k starts at
    FIRST_PULSE + delay + k * period; a finite train plays every pulse starting less than
    ``train`` cycles after the first table cycle's start."""
    out = []
    k = 0
    while len(out) < n:
        for onset, width in pairs(s):
            if s.train and k * s.period + onset >= s.train:
                return out
            out.append((sg.FIRST_PULSE + s.delay + k * s.period + onset, width))
            if len(out) == n:
                break
        k += 1
    return out


def expected(s, n):
    """Pin levels [(cycle, a, b)] of the first n pulses, written out from the definition."""
    on1, on2 = ((0, 1), (1, 0)) if s.polarity else ((1, 0), (0, 1))
    out = []
    for t, width in starts(s, n):
        out.append((t, *on1))
        t += width
        if s.shape == sg.BIPH:
            if s.gap:
                out.append((t, 0, 0))
                t += s.gap
            out.append((t, *on2))
            t += width
        out.append((t, 0, 0))
    return out


def brute_pulse_count(s):
    """Pulses of a finite train: whole table cycles that end before it does, then the
    pulses of the cycles after those one by one (trains can span billions of cycles)."""
    p = pairs(s)
    last = p[-1][0]
    k = -(-(s.train - last) // s.period) if s.train > last else 0  # cycles wholly inside
    count = k * len(p)
    while k * s.period + s.table[0] < s.train:
        count += sum(1 for onset, _ in p if k * s.period + onset < s.train)
        k += 1
    return count


def possible_list(s):
    """Whether list-mode settings can be played, decided from the word timing alone."""
    biph = s.shape == sg.BIPH
    if not s.table or len(s.table) % 2 or len(s.table) > 128:
        return False
    if s.width < 8 or (biph and 0 < s.gap < 8) or s.gap < 0 or s.burst_count < 1:
        return False
    p = pairs(s)
    holds = []
    for j, (onset, width) in enumerate(p):
        if width < 8 or onset < 0:
            return False
        nxt = p[j + 1][0] if j + 1 < len(p) else s.period + p[0][0]
        rest = nxt - onset - plen(s, width)
        if rest < MIN_START:
            return False
        holds.append((width, False))
        if biph:
            if s.gap:
                holds.append((s.gap, False))
            holds.append((width, False))
        holds.append((rest, True))
    if p[-1][0] + plen(s, p[-1][1]) > s.period:
        return False
    if s.train < 0 or (s.train and s.train <= p[0][0]):
        return False
    # The delay words: plain rest words, the last before the first pulse start.
    first = s.delay + p[0][0]
    hold = first + H.PP.PRE_START - H.PP.PRE_PLAIN
    if s.delay < 0 or (first and (hold < MIN_START or H._pieces_range(hold, True)[0] > 8)):
        return False
    fewest = most = 0
    for d, before_start in holds:
        lo, hi = H._pieces_range(d, before_start)
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
        last = brute_pulse_count(s) - 1
        r, j = divmod(last, len(p))
        flagged = [i for i, w in enumerate(rec) if w & 1]
        end = flagged[j + 1] if j + 1 < len(flagged) else len(rec)
        last_on = max(i for i in range(flagged[j], end) if H.decode(rec[i])[1])
        if r * len(rec) + last_on + 2 > 0xFFFFFFFF:
            return False
    return True


def reference_record(s):
    """The record by the padding rule on explicit segment lists: every segment in its fewest
    words, then more words for a power-of-two length, rests first, then gaps, then phases,
    each kind from the record's end; a segment of k words puts y = D - (k-1)*8 - 3 - PRE
    loop counts in them, the remainder one each in the first words."""
    rest_kind, gap_kind, phase_kind = 0, 1, 2
    if s.list_on:
        pulses = pairs(s)
        wrap = s.period + pulses[0][0]
    else:
        pulses = [(j * s.period, s.width) for j in range(s.burst_count)]
        wrap = s.burst_period if s.burst_count > 1 else s.period
    first = 2 if s.polarity else 1
    segs = []  # [d, pattern, flag, kind, before a start, words]
    for j, (onset, width) in enumerate(pulses):
        segs.append([width, first, 1, phase_kind, False, 0])
        if s.shape == sg.BIPH:
            if s.gap:
                segs.append([s.gap, 0, 0, gap_kind, False, 0])
            segs.append([width, 3 - first, 0, phase_kind, False, 0])
        nxt = pulses[j + 1][0] if j + 1 < len(pulses) else wrap
        segs.append([nxt - onset - plen(s, width), 0, 0, rest_kind, True, 0])
    for seg in segs:
        seg[5] = H._pieces_range(seg[0], seg[4])[0]
    total = sum(seg[5] for seg in segs)
    size = 1
    while size < total:
        size *= 2
    extra = size - total
    for kind in (rest_kind, gap_kind, phase_kind):
        for seg in reversed(segs):
            if seg[3] == kind and extra:
                add = min(H._pieces_range(seg[0], seg[4])[1] - seg[5], extra)
                seg[5] += add
                extra -= add
    assert extra == 0
    words = []
    for d, pattern, flag, _, before_start, k in segs:
        pre = H.PP.PRE_START if before_start else H.PP.PRE_PLAIN
        q, r = divmod(d - (k - 1) * 8 - H.PP.POST_FIXED - pre, k)
        for i in range(k):
            words.append((q + (i < r)) << 3 | pattern << 1 | (flag if i == 0 else 0))
    return words


# --------------------------------------------------------------------------- strategies


@st.composite
def list_settings(draw, max_pulses=64, max_width=SEC, max_rest=100 * SEC, messy=True):
    """List-mode settings over the whole ranges, with weight at the limits.

    ``messy`` also gives impossible tables, each with one defect drawn on the edge of its
    rule (a rest or width a cycle short, two pulses swapped, one pulse too many...)."""
    shape = draw(st.sampled_from([sg.BIPH, sg.MON]))
    gap = draw(st.one_of(st.just(0), st.integers(8, 30), st.integers(8, max_width)))
    n = draw(
        st.one_of(
            st.integers(1, min(4, max_pulses)),
            st.integers(1, min(12, max_pulses)),
            st.integers(1, max_pulses),
            st.just(max_pulses),
        )
    )
    widths = draw(
        st.lists(st.one_of(st.integers(8, 30), st.integers(8, max_width)), min_size=n, max_size=n)
    )
    rests = draw(
        st.lists(
            st.one_of(st.integers(MIN_START, 40), st.integers(MIN_START, max_rest)),
            min_size=n,
            max_size=n,
        )
    )
    defect = draw(st.sampled_from([None] * 8 + ["width", "gap", "rest", "swap", "extra", "odd"]))
    if not messy:
        defect = None
    j = draw(st.integers(0, n - 1))
    if defect == "width":
        widths[j] = draw(st.integers(-1, 7))
    elif defect == "gap" and shape == sg.BIPH:
        gap = draw(st.integers(1, 7))
    elif defect == "rest":
        rests[j] = draw(st.integers(-max(widths), MIN_START - 1))
    onset = draw(st.one_of(st.just(0), st.integers(0, 20), st.integers(0, max_rest)))
    pulses = []
    for width, rest in zip(widths, rests, strict=True):
        pulses.append((onset, width))
        onset += (width if shape == sg.MON else 2 * width + gap) + rest
    period = onset - pulses[0][0]  # the last rest runs to the next cycle's first onset
    if defect == "swap" and n > 1:
        i = min(j, n - 2)
        pulses[i], pulses[i + 1] = pulses[i + 1], pulses[i]
    elif defect == "extra":
        pulses += [(period + 100 * k, 8) for k in range(64 - n + 1)]
    flat = tuple(c for p in pulses for c in p)
    if defect == "odd":
        flat = flat[:-1]
    train = draw(
        st.one_of(
            st.just(0),
            st.integers(1, 4 * max(period, 1)),
            st.just(max(period, 1)),
            st.integers(1, 10**13),
        )
    )
    delay = draw(
        st.one_of(
            st.just(0),
            st.integers(0, 20),
            st.integers(0, sg.DELAY_MAX + 100),
            st.sampled_from([sg.DELAY_MAX, sg.DELAY_MAX + 1]),
        )
    )
    return Settings(
        # The regular pulse and bursts do not apply in list mode, even impossible ones.
        width=draw(st.integers(8, 2 * SEC)),
        gap=gap,
        period=period,
        shape=shape,
        polarity=draw(st.integers(0, 1)),
        burst_count=draw(st.one_of(st.just(1), st.integers(2, 5000))),
        burst_period=draw(st.integers(0, 10**6)),
        train=train,
        delay=delay,
        table=flat,
        list_on=1,
    )


def small_list_settings():
    """Possible tables whose records stay short, for the executor."""
    return list_settings(max_pulses=6, max_width=SEC // 1000, max_rest=SEC // 100).filter(
        lambda s: sg.conflict(s) is None
    )


def list_stream(s, max_words=6000):
    """Delay words, then record words as the DMA plays them; (words, complete, pulses)."""
    rec = sg.record(s)
    total = sg.train_words(s)
    words = sg.delay_words(s)
    if total and total <= max_words:
        words += [rec[i % len(rec)] for i in range(total)]
        return words, True, sg.pulse_count(s)
    records = max(1, max_words // len(rec))
    return words + rec * records, False, records * (len(s.table) // 2)


# --------------------------------------------------------------------------- compiler


@MANY
@given(list_settings())
def test_conflict_exactly_when_impossible_and_words_follow_the_table(s):
    why = sg.conflict(s)
    if not possible_list(s):
        assert isinstance(why, str) and why
        for fn in (sg.record, sg.record_len, sg.delay_words, sg.train_words):
            with pytest.raises(ValueError, match=why):
                fn(s)
        return
    assert why is None, why
    delay = sg.delay_words(s)
    assert len(delay) <= 8 and (not delay) == (s.delay + s.table[0] == 0)
    words, complete, pulses = list_stream(s)
    got, dead = H.play(words)
    assert not dead
    assert got == sg.timeline(s, pulses) == expected(s, pulses)
    if complete:
        assert sg.pulse_count(s) == brute_pulse_count(s) == pulses
        assert got[-1][1:] == (0, 0)


@SOME
@given(list_settings(messy=False))
def test_words_decode_to_the_table(s):
    assume(sg.conflict(s) is None)
    rec = sg.record(s)
    assert len(rec) & (len(rec) - 1) == 0 and 2 <= len(rec) <= sg.RECORD_MAX
    assert sg.record_len(s) == len(rec)
    d = H.durations(rec)
    assert sum(d) == s.period  # one table cycle, from the first pulse to the next cycle's
    assert [i for i, w in enumerate(rec) if w & 1][0] == 0
    assert sum(w & 1 for w in rec) == len(s.table) // 2
    holds = []
    for i, word in enumerate(rec):
        flag, pattern, y = H.decode(word)
        assert pattern != 3 and 0 <= y <= Y_MAX
        if holds and not flag and holds[-1][0] == pattern:
            holds[-1][1] += d[i]
        else:
            holds.append([pattern, d[i]])
    first = sg.PAT_B if s.polarity else sg.PAT_A
    want = []
    p = pairs(s)
    for j, (onset, width) in enumerate(p):
        want.append([first, width])
        if s.shape == sg.BIPH:
            if s.gap:
                want.append([0, s.gap])
            want.append([3 - first, width])
        nxt = p[j + 1][0] if j + 1 < len(p) else s.period + p[0][0]
        want.append([0, nxt - onset - plen(s, width)])
    assert holds == want


@MANY
@given(st.one_of(list_settings(messy=False), H.any_settings()))
def test_words_follow_the_padding_rule(s):
    """Regular settings and tables alike: the record is exactly the padding rule's."""
    assume(sg.conflict(s) is None)
    assert sg.record(s) == reference_record(s)


@SOME
@given(list_settings(messy=False), st.integers(1, 10**7))
def test_trains_play_every_pulse_that_starts_before_the_train_ends(s, train):
    s.train = train
    assume(sg.conflict(s) is None)
    n = sg.pulse_count(s)
    assert n == brute_pulse_count(s) >= 1
    played = starts(s, n)
    endless = s.copy()
    endless.train = 0
    following = starts(endless, n + 1)[n]
    # pulse start times counted from the first table cycle's start
    origin = sg.FIRST_PULSE + s.delay
    assert played[-1][0] - origin < s.train <= following[0] - origin
    words, complete, pulses = list_stream(s, max_words=50_000)
    if complete:
        assert pulses == n
        assert H.play(words)[0] == expected(s, n) == sg.timeline(s, n + 5)


def test_a_worked_table():
    # 100 us and 50 us biphasic pulses (gap 20 us) at 0 and 1 ms, then 40 us at 3 ms; 5 ms.
    us = 125
    s = table_settings(
        [(0, 100 * us), (1000 * us, 50 * us), (3000 * us, 40 * us)], 5000 * us, gap=20 * us
    )
    assert sg.conflict(s) is None
    rec = sg.record(s)
    # 12 segments padded to 16 words: the last rest (the longest) split into 5.
    assert [H.decode(w)[:2] for w in rec] == [
        *[(1, sg.PAT_A), (0, 0), (0, sg.PAT_B), (0, 0)],
        *[(1, sg.PAT_A), (0, 0), (0, sg.PAT_B), (0, 0)],
        *[(1, sg.PAT_A), (0, 0), (0, sg.PAT_B)] + [(0, 0)] * 5,
    ]
    assert H.durations(rec)[:11] == [
        *[100 * us, 20 * us, 100 * us, (1000 - 220) * us],
        *[50 * us, 20 * us, 50 * us, (3000 - 1000 - 120) * us],
        *[40 * us, 20 * us, 40 * us],
    ]
    assert sum(H.durations(rec)[11:]) == (5000 - 3000 - 100) * us
    assert sg.delay_words(s) == [] and sg.train_words(s) == 0
    assert sg.pulse_cycles(s) == 220 * us  # the longest pulse of the table
    rises = [t for t, a, _ in sg.timeline(s, 6) if a]
    assert rises == [8 + c * us for c in (0, 1000, 3000, 5000, 6000, 8000)]
    # A 5.5 ms train: the three pulses and the next cycle's first (at 5 ms); just over 6 ms,
    # also its second (at 6 ms).
    s.train = 5500 * us
    assert sg.pulse_count(s) == 4
    s.train = 6000 * us + 1
    assert sg.pulse_count(s) == 5
    # A first onset of 300 us: the delay words hold it (with the delay).
    later = table_settings([(300 * us, 100 * us), (1000 * us, 50 * us)], 5000 * us, delay=77)
    assert sg.timeline(later, 1)[0][0] == 8 + 77 + 300 * us
    assert sum(H.durations(sg.delay_words(later) + [1])[:-1]) == 77 + 300 * us + 4


def test_conflicts():
    us = 125
    ok = [(0, 100 * us), (1000 * us, 50 * us)]

    def why(pulses, period=5000 * us, **kw):
        return sg.conflict(table_settings(pulses, period, **kw))

    assert why(ok) is None
    assert why(ok, gap=7) == "interphase gap below minimum"
    # Overlapping, unsorted, or less than 12 cycles of rest before the next onset.
    end = 2 * 100 * us + 6250
    assert why([(0, 100 * us), (end + 12, 8)]) is None
    assert why([(0, 100 * us), (end + 11, 8)]) == "pulses unsorted or too close"
    assert why([(0, 100 * us), (end - 1, 8)]) == "pulses unsorted or too close"
    assert why([(1000 * us, 50 * us), (0, 100 * us)]) == "pulses unsorted or too close"
    assert why([(0, 8), (0, 8)]) == "pulses unsorted or too close"
    assert why([(-1, 8)]) == "pulses unsorted or too close"
    assert why([(0, 7)]) == "pulse width below minimum"
    # The last pulse ends within the period, 12 cycles before the next cycle's first pulse.
    last_end = 1000 * us + 2 * 50 * us + 6250
    assert why(ok, period=last_end + 12) is None
    assert why(ok, period=last_end + 11) == "last pulse too near period end"
    late = [(20, 8), (1000, 8)]  # monophasic: ends at 1008; the next first onset is at P + 20
    assert why(late, period=1000, shape=sg.MON) == "last pulse too near period end"
    assert why(late, period=1008, shape=sg.MON) is None
    # Table size: 1 to 64 pulses.
    assert why([]) == "table needs 1 to 64 pulses"
    assert sg.conflict(Settings(list_on=1)) == "table needs 1 to 64 pulses"
    many = [(j * 100, 8) for j in range(64)]
    assert why(many, period=6400, shape=sg.MON) is None
    assert why([*many, (6400, 8)], period=6500, shape=sg.MON) == "table needs 1 to 64 pulses"
    s = table_settings(ok, 5000 * us)
    s.table = s.table[:-1]
    assert sg.conflict(s) == "table needs 1 to 64 pulses"
    s.table = (0, 1.5)
    assert sg.conflict(s) == "table must be whole cycles"
    # Delay words: delay + first onset is 0 or 8..DELAY_MAX cycles.
    mon = {"shape": sg.MON}
    for first in range(1, 8):
        assert why([(first, 8)], 100, **mon) == "delay plus first onset below minimum"
        assert why([(first, 8)], 100, delay=8 - first, **mon) is None
    assert why([(8, 8)], 100, **mon) is None
    assert why([(sg.DELAY_MAX - 5, 8)], sg.DELAY_MAX + 99, delay=5, **mon) is None
    assert why([(sg.DELAY_MAX - 5, 8)], sg.DELAY_MAX + 99, delay=6, **mon) == (
        "delay plus first onset too long"
    )
    # A train that ends before the first pulse plays nothing: refused.
    assert why([(500, 8)], 1000, train=500, **mon) == "train ends before first pulse"
    assert why([(500, 8)], 1000, train=501, **mon) is None
    # Too many words: rests of more than ~4.3 s take several words each.
    huge = 2100 * sg.PIECE_MAX
    assert why([(0, 8)], period=huge, shape=sg.MON) == "record needs more than 1024 words"
    # Too few cycles to pad to a power of two: 3 minimal segments need a fourth word.
    assert why([(0, 8)], period=8 + 8 + 12, gap=0) == "period too short to pad the record"
    assert why([(0, 8)], period=8 + 8 + 12 + 8, gap=0) is None
    # The DMA count is 32 bits.
    assert why([(0, 8)], period=36, gap=0, train=10**12) == "train too long"


def test_regular_mode_ignores_the_table_and_list_mode_the_pulse_settings():
    s = Settings(width=100, gap=20, period=1000, burst_count=2, burst_period=3000)
    plain = (sg.record(s), sg.delay_words(s), sg.train_words(s), sg.timeline(s, 5))
    s.table = (5, 8, 80, 8)  # loaded, list mode off: nothing changes
    assert (sg.record(s), sg.delay_words(s), sg.train_words(s), sg.timeline(s, 5)) == plain
    assert sg.pulse_cycles(s) == 220 and list(sg.limit_views(s)) == [s]
    # In list mode the regular width, bursts and even an impossible regular pulse do not count.
    s.width = 10**6
    assert sg.conflict(s) is not None
    s.list_on = 1
    s.delay = 3  # + first onset 5: 8 cycles of delay words
    assert sg.conflict(s) is None
    assert sg.pulse_cycles(s) == 2 * 8 + 20
    assert sg.timeline(s, 3) == expected(s, 3)
    assert [t for t, a, _ in sg.timeline(s, 3) if a] == [8 + 3 + 5, 8 + 3 + 80, 8 + 3 + 1005]


def test_limit_views_are_the_pulses_with_their_spacing():
    s = table_settings([(100, 20), (400, 30), (480, 8)], 1000, gap=0, burst_count=3)
    assert sg.conflict(s) is None
    views = list(sg.limit_views(s))
    assert [(v.width, v.period) for v in views] == [(20, 300), (30, 80), (8, 620)]
    for v in views:
        assert (v.list_on, v.burst_count, v.shape, v.gap) == (0, 1, s.shape, 0)
        assert sg.conflict(v) is None  # each one a playable regular setting
    assert s.list_on == 1 and s.burst_count == 3  # the settings themselves unchanged


def test_record_into_buffer_and_longest_table():
    from array import array

    # 64 monophasic pulses 40 s apart: rests of 10 words each, a 1024-word record.
    s = table_settings([(j * 40 * SEC, 8 + j) for j in range(64)], 2560 * SEC, shape="MON")
    assert sg.conflict(s) is None
    buf = array("I", [0] * sg.record_len(s))
    assert sg.record_into(s, buf) == len(buf) == sg.RECORD_MAX
    assert list(buf) == sg.record(s) == reference_record(s)
    assert sum(H.durations(list(buf))) == s.period


# --------------------------------------------------------------------------- executor


@SLOW
@given(small_list_settings(), st.integers(1, 12))
def test_executor_plays_the_table(s, pulses):
    words, complete, covered = list_stream(s, max_words=600)
    if complete:
        want = expected(s, 1 << 30)
        sm, got = H.run(s, want[-1][0] + 10 * SEC)
        assert got == want
        # The train ended on a rest word: the machine waits at the pull.
        assert sm.stalled and sm.pc == 0 and not sm.tx
    else:
        want = expected(s, min(pulses, covered))
        _, got = H.run(s, want[-1][0] + 1)
        assert got == want


def test_executor_plays_64_pulses_over_several_cycles():
    us = 125
    pulses = [(j * 40 * us + (j % 3) * 8, 8 + 3 * j) for j in range(64)]
    s = table_settings(pulses, 64 * 40 * us + 100, gap=8, polarity=1, delay=1234)
    assert sg.conflict(s) is None and len(sg.record(s)) == 256
    want = expected(s, 3 * 64 + 5)
    _, got = H.run(s, want[-1][0] + 1)
    assert got == want


def test_executor_disarm_keeps_the_table_in_phase():
    us = 125
    s = table_settings([(0, 10 * us), (300 * us, 20 * us), (350 * us, 8)], 1000 * us, gap=0)
    tl = expected(s, 12)
    rises = [t for t, a, _ in tl if a]
    # ARM low from after pulse 2 to before pulse 6: pulses 3, 4 and 5 rest, the others play.
    inputs = H.StepInputs(
        [(rises[2] + 1, H.ARM, 0), (rises[6] - H.ARM_LEAD - 1, H.ARM, 1)],
        {H.ARM: 1, H.INTERLOCK: 1},
    )
    assert H._check_disarmed(s, inputs, 12) == [3, 4, 5]


# --------------------------------------------------------------------------- MicroPython


MP_SCRIPT = """
from stim import segments as sg

S = 125000000
cases = (
    sg.Settings(period=5 * S // 1000, table=(0, 12500, 125000, 6250, 375000, 5000), list_on=1),
    sg.Settings(period=3600 * S, table=(60 * S, 8, 1800 * S, S), list_on=1, train=4000 * S,
                shape="MON", polarity=1, delay=9),
    sg.Settings(period=36, gap=0, table=(0, 8), list_on=1, width=10 ** 6, burst_count=7),
    sg.Settings(period=1000, table=(0, 8, 5, 8), list_on=1),
)
for s in cases:
    why = sg.conflict(s)
    if why is None:
        print(sg.record(s), sg.delay_words(s), sg.train_words(s), sg.pulse_count(s))
        print(sg.timeline(s, 7), sg.pulse_cycles(s))
        print([(v.width, v.period) for v in sg.limit_views(s)])
    else:
        print(why)
"""


def test_same_results_under_micropython():
    binary = H._micropython()
    if binary is None:
        pytest.skip("no MicroPython interpreter found")
    board = str(H.ROOT / "board")
    outputs = []
    for command, env in (
        ([binary, "-X", "heapsize=192K", "-c", MP_SCRIPT], dict(os.environ, MICROPYPATH=board)),
        ([sys.executable, "-c", MP_SCRIPT], dict(os.environ, PYTHONPATH=board)),
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr + done.stdout
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[-1] == "pulses unsorted or too close"


# --------------------------------------------------------------------------- SCPI, in CPython


class _Bench:
    """What stim.source_cmds needs of the instrument: leads, limits and change hooks."""

    def __init__(self):
        from types import SimpleNamespace

        from stim import limits

        self.limits = limits.Limits()
        self.leads = [SimpleNamespace(index=i, settings=Settings(), current=0) for i in range(4)]
        self.changed = []
        self.global_on = False

    def check_limits(self, lead, s, code):
        from stim import limits

        limits.check(self.limits, s, code)

    def room_for(self, lead, s):
        pass  # the record memory is the instrument's (tests/test_record_memory.py)

    def settings_changed(self, lead):
        self.changed.append(lead.index)


def test_list_commands_in_cpython():
    from stim.errors import ErrorQueue
    from stim.scpi import Parser
    from stim.source_cmds import SourceCommands

    errors = ErrorQueue(8)
    parser = Parser(errors)
    bench = _Bench()
    SourceCommands(bench, parser)
    lead = bench.leads[1]
    assert parser.execute("SOUR2:LIST:PULS?;:SOUR2:LIST:COUN?;:SOUR2:LIST?") == [";0;0"]
    parser.execute("SOUR2:LIST:PULS 100us,20us,1ms,8ns")
    assert errors.codes() == [-222]  # a width under 64 ns
    errors.clear()
    parser.execute("SOUR2:PULS:PER 2ms;:SOUR2:LIST:PULS 100us,20us,1ms,64ns;PULS APP,1.5ms,1us")
    assert errors.codes() == []
    assert lead.settings.table == (12_500, 2_500, 125_000, 8, 187_500, 125)
    assert lead.settings.list_on == 0 and bench.changed == [1]  # only the period: list mode off
    assert parser.execute("SOUR2:LIST:PULS? 2,1;:SOUR2:LIST:COUN?") == [
        "1.000000E-03,6.400000E-08;3"
    ]
    parser.execute("SOUR2:LIST ON")
    assert lead.settings.list_on == 1 and bench.changed == [1, 1]
    parser.execute("SOUR2:LIST:PULS 0,10us,50us,10us")  # 50 us apart: over 10 kHz
    assert errors.codes() == [-221]
    errors.clear()
    assert lead.settings.table == (12_500, 2_500, 125_000, 8, 187_500, 125)
