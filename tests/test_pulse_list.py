"""List mode (custom pulse tables), configured over SCPI and measured on captures of the
executed PIO of the virtual board.

A lead in list mode plays its table: each pulse at its own onset from the start of the table
cycle, with its own phase width and the lead's shape, gap and polarity, the table repeating
every SOURce<n>:PULSe:PERiod. Every timing assertion is exact, in 125 MHz cycles, and checks
every pulse of several table cycles against the table as configured; nothing here computes the
waveform with the firmware's compiler.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picostim.client import ScpiClient
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

US = 125  # cycles per microsecond
Table = list[tuple[int, int]]  # (onset, width) in cycles


def ns(cycles: int) -> str:
    """A time of whole cycles as SCPI text (8 ns per cycle)."""
    return "%dns" % (8 * cycles)


def load(inst: ScpiClient, lead: int, table: Table) -> None:
    inst.command(
        "SOUR%d:LIST:PULS %s" % (lead, ",".join("%s,%s" % (ns(o), ns(w)) for o, w in table))
    )


def table_query(inst: ScpiClient, lead: int) -> str:
    return inst.query("SOUR%d:LIST:PULS?" % lead)


START_LATENCY = 0.6  # s from OUTP:GLOB ON to the first pulse, at most, on a loaded machine


def play(inst: ScpiClient, vb: VirtualBoard, seconds: float) -> Waveform:
    """Output on, captured from before the first pulse for `seconds` after it (and more)."""
    cap = vb.start_capture(seconds + START_LATENCY)
    inst.write("OUTP:GLOB ON")
    wf = cap.result()
    assert inst.errors() == []
    return wf


def expected_phases(
    table: Table, period: int, gap: int, biphasic: bool, t0: int, until: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(phase 1, phase 2) intervals of every pulse that ends by `until`, the table's first
    pulse starting at t0: pulse j of table cycle k starts at t0 + k * period + onset_j - onset_0."""
    first, second = [], []
    k = 0
    while True:
        for onset, width in table:
            start = t0 + k * period + onset - table[0][0]
            end = start + (2 * width + gap if biphasic else width)
            if end > until:
                return first, second
            first.append((start, start + width))
            if biphasic:
                second.append((start + width + gap, end))
        k += 1


def assert_plays(
    wf: Waveform,
    lead: int,
    table: Table,
    period: int,
    gap: int = 0,
    biphasic: bool = True,
    inverted: bool = False,
    cycles: int = 3,
) -> None:
    """Every phase of the lead's output is exactly where the table puts it, over at least
    `cycles` table cycles from the first pulse."""
    one, two = "ch%d_a" % lead, "ch%d_b" % lead
    if inverted:
        one, two = two, one
    got1, got2 = wf.pulses(one), wf.pulses(two)
    assert got1, "no pulse"
    want1, want2 = expected_phases(table, period, gap, biphasic, got1[0][0], wf.cycles)
    assert len(want1) >= cycles * len(table)
    # A phase 1 whose phase 2 runs past the window's end is in the capture, not in want1.
    assert got1[: len(want1)] == want1 and len(got1) <= len(want1) + 1
    assert got2 == want2
    assert wf.initial_level(one) == 0 and wf.initial_level(two) == 0


def test_defaults_and_queries(inst: ScpiClient) -> None:
    assert inst.query("SOUR1:LIST:COUN?") == "0"
    assert inst.query("SOUR1:LIST?") == "0"
    assert inst.query("SOUR1:LIST:STAT?") == "0"
    assert table_query(inst, 1) == ""
    inst.command("SOUR2:LIST:PULS 0,100us,1ms,50us,2.5ms,20.008us")
    assert table_query(inst, 2) == (
        "0.000000E+00,1.000000E-04,1.000000E-03,5.000000E-05,2.500000E-03,2.000800E-05"
    )
    assert inst.query("SOUR2:LIST:COUN?;:SOUR1:LIST:COUN?") == "3;0"
    # APPend adds pulses after the present ones; a plain load replaces the table.
    inst.command("SOUR2:LIST:PULS APP,3ms,10us;:SOUR2:LIST:PULS APPend,4ms,MIN")
    assert inst.query("SOUR2:LIST:COUN?") == "5"
    assert table_query(inst, 2).endswith(",3.000000E-03,1.000000E-05,4.000000E-03,6.400000E-08")
    # The query takes a window: from pulse first (numbered from 1), count pulses.
    assert inst.query("SOUR2:LIST:PULS? 4") == (
        "3.000000E-03,1.000000E-05,4.000000E-03,6.400000E-08"
    )
    assert inst.query("SOUR2:LIST:PULS? 2,1") == "1.000000E-03,5.000000E-05"
    assert inst.query("SOUR2:LIST:PULS? 5,9") == "4.000000E-03,6.400000E-08"
    assert inst.query("SOUR2:LIST:PULS? 6;:SOUR2:LIST:PULS? 1,0") == ";"
    for window, code in (("0", -222), ("65", -222), ("1,65", -222), ("1,2,3", -108)):
        inst.write("SOUR2:LIST:PULS? " + window)
        assert [c for c, _ in inst.errors()] == [code], window
    inst.command("SOUR2:LIST:PULS 1ms,10us")
    assert table_query(inst, 2) == "1.000000E-03,1.000000E-05"
    inst.command("SOUR2:PULS:PER 10ms;:SOUR2:LIST ON")
    assert inst.query("SOUR2:LIST:STAT?;STAT?;:SOUR2:LIST?") == "1;1;1"
    inst.command("SOUR2:LIST:STAT OFF")
    assert inst.query("SOUR2:LIST?") == "0"
    inst.command("*RST")
    assert inst.query("SOUR2:LIST:COUN?;:SOUR2:LIST?") == "0;0"


def test_table_plays_exactly(inst: ScpiClient, vb: VirtualBoard) -> None:
    table = [(0, 100 * US), (1000 * US, 50 * US), (1500 * US, 20 * US), (3200 * US, 200 * US)]
    period, gap = 5000 * US, 30 * US
    load(inst, 1, table)
    inst.command("SOUR1:PULS:PER 5ms;GAP 30us;:SOUR1:LIST ON;:OUTP1 ON")
    wf = play(inst, vb, 0.02)
    assert_plays(wf, 1, table, period, gap, cycles=4)
    for ch in (2, 3, 4):  # leads not enabled stay at rest
        assert wf.edges("ch%d_a" % ch) == [] and wf.edges("ch%d_b" % ch) == []


def test_inverted_monophasic_table(inst: ScpiClient, vb: VirtualBoard) -> None:
    table = [(40 * US, 10 * US), (150 * US, 60 * US), (400 * US, 8)]
    load(inst, 3, table)
    inst.command("SOUR3:PULS:PER 1ms;SHAP MON;POL INV;:SOUR3:LIST ON;:OUTP3 ON")
    wf = play(inst, vb, 0.005)
    assert_plays(wf, 3, table, 1000 * US, biphasic=False, inverted=True, cycles=5)
    assert wf.edges("ch3_a") == []  # monophasic, inverted: pin B only


def test_first_onset_and_delay_place_the_table_exactly(inst: ScpiClient, vb: VirtualBoard) -> None:
    # Lead 1: regular pulses at 1 kHz, undelayed. Lead 2: a table whose first onset is 300 us,
    # delayed by 100 us; both start in the same cycle, so lead 2's first pulse comes exactly
    # delay + first onset after lead 1's first.
    inst.command("SOUR1:FREQ 1kHz;:SOUR1:PULS:WIDT 50us;:OUTP1 ON")
    table = [(300 * US, 20 * US), (700 * US, 40 * US)]
    load(inst, 2, table)
    inst.command("SOUR2:PULS:PER 1ms;:SOUR2:DEL 100us;:SOUR2:LIST ON;:OUTP2 ON")
    wf = play(inst, vb, 0.008)
    first1 = wf.pulses("ch1_a")[0][0]
    first2 = wf.pulses("ch2_a")[0][0]
    assert first2 - first1 == 400 * US
    assert_plays(wf, 2, table, 1000 * US, gap=6250, cycles=5)


def test_train_plays_every_pulse_starting_before_its_end(
    inst: ScpiClient, vb: VirtualBoard
) -> None:
    # Pulses at 0, 0.4 and 1.2 ms of each 2 ms cycle: a 4.401 ms train plays the pulses that
    # start at 0, 0.4, 1.2, 2, 2.4, 3.2, 4 and 4.4 ms, each complete, and none later.
    table = [(0, 30 * US), (400 * US, 10 * US), (1200 * US, 20 * US)]
    load(inst, 1, table)
    inst.command("SOUR1:PULS:PER 2ms;GAP 0;:SOUR1:TRA:DUR 4.401ms;:SOUR1:LIST ON;:OUTP1 ON")
    wf = play(inst, vb, 0.02)
    a, b = wf.pulses("ch1_a"), wf.pulses("ch1_b")
    want_a, want_b = expected_phases(table, 2000 * US, 0, True, a[0][0], a[0][0] + 4500 * US)
    assert len(want_a) == 8
    assert a == want_a and b == want_b
    # A 4 ms train ends exactly where the third cycle's first pulse would start: without it.
    inst.command("OUTP:GLOB OFF;:SOUR1:TRA:DUR 4ms")
    wf = play(inst, vb, 0.02)
    assert len(wf.pulses("ch1_a")) == 6


def test_list_off_plays_the_regular_pulses_again(inst: ScpiClient, vb: VirtualBoard) -> None:
    load(inst, 1, [(0, 10 * US), (200 * US, 10 * US)])
    inst.command("SOUR1:FREQ 1kHz;:SOUR1:PULS:WIDT 100us;:SOUR1:LIST ON;:OUTP1 ON")
    wf = play(inst, vb, 0.005)
    assert {f - r for r, f in wf.pulses("ch1_a")} == {10 * US}
    inst.command("OUTP:GLOB OFF;:SOUR1:LIST OFF")
    wf = play(inst, vb, 0.005)
    a = wf.pulses("ch1_a")
    assert {f - r for r, f in a} == {100 * US}
    assert {r2 - r1 for (r1, _), (r2, _) in zip(a, a[1:], strict=False)} == {1000 * US}


@st.composite
def tables(draw: st.DrawFn) -> tuple[Table, int, int, str]:
    """A random playable table of 1 to 6 pulses, with its period, gap and shape."""
    shape = draw(st.sampled_from(["BIPH", "MON"]))
    gap = draw(st.one_of(st.just(0), st.integers(8, 20 * US)))
    n = draw(st.integers(1, 6))
    onset = draw(st.one_of(st.just(0), st.integers(8, 200 * US)))
    table = []
    for _ in range(n):
        width = draw(st.integers(8, 40 * US))
        table.append((onset, width))
        pulse = 2 * width + gap if shape == "BIPH" else width
        # At least 100 us from onset to onset (the 10 kHz limit) and a duty cycle under 50 %.
        onset += max(12_500, 4 * pulse) + draw(st.integers(0, 300 * US))
    # The last pulse ends within the period, and long before the next cycle's first.
    return table, onset + draw(st.integers(0, 100 * US)), gap, shape


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tables(), st.integers(0, 1))
def test_random_tables_are_played_exactly(
    inst: ScpiClient, vb: VirtualBoard, drawn: tuple[Table, int, int, str], polarity: int
) -> None:
    table, period, gap, shape = drawn
    inst.write("OUTP:GLOB OFF;*RST")
    # The regular pulse made short first: the period is checked against it while list mode
    # is off.
    inst.command("SOUR1:PULS:WIDT MIN;GAP %s;PER %s;SHAP %s" % (ns(gap), ns(period), shape))
    load(inst, 1, table)
    pol = "INV" if polarity else "NORM"
    inst.command("SOUR1:PULS:POL %s;:SOUR1:LIST ON;:OUTP1 ON" % pol)
    wf = play(inst, vb, 3 * period / 125e6)
    assert_plays(wf, 1, table, period, gap, shape == "BIPH", bool(polarity), cycles=3)


@pytest.fixture
def fresh(real_port: str | None) -> Iterator[ScpiClient]:
    """A board of its own: a 64-pulse table needs a 2 KiB ring, which a heap fragmented by a
    long session of other tests may not have in one piece (a known limit of the 192 KiB heap
    on the 64-bit unix port)."""
    if real_port:
        with ScpiClient(real_port, timeout=5) as client:
            client.write("*RST;*CLS")
            yield client
        return
    with VirtualBoard() as board, ScpiClient(board.port, timeout=5) as client:
        yield client


def test_long_tables_are_loaded_in_parts(fresh: ScpiClient) -> None:
    inst = fresh
    # A line holds 256 characters: 64 pulses go in parts of 10 with APPend.
    table = [(j * (100 * US + 1), 8 + j) for j in range(64)]
    inst.command("SOUR4:PULS:PER 6.5ms")

    def send(first: int, last: int) -> None:
        for k in range(first, last, 10):
            part = ",".join("%s,%s" % (ns(o), ns(w)) for o, w in table[k : min(k + 10, last)])
            inst.command("SOUR4:LIST:PULS %s%s" % ("APP," if k else "", part))

    send(0, 24)
    assert inst.query("SOUR4:LIST:COUN?") == "24"
    send(24, 64)
    assert inst.query("SOUR4:LIST:COUN?") == "64"
    # Read back in windows of 16 pulses: replies of about 400 characters.
    values = []
    for first in range(1, 65, 16):
        values += [float(v) for v in inst.query("SOUR4:LIST:PULS? %d,16" % first).split(",")]
    assert [round(v * 125e6) for v in values] == [c for p in table for c in p]
    # A 65th pulse would fit in the period but is one too many: refused, nothing changes.
    inst.write("SOUR4:LIST:PULS APP,6.39ms,64ns")
    err = inst.errors()
    assert [c for c, _ in err] == [-221] and "64" in err[0][1]
    assert inst.query("SOUR4:LIST:COUN?") == "64"
    inst.command("SOUR4:LIST ON")  # the whole table is playable


def test_rejected_tables_change_nothing(inst: ScpiClient) -> None:
    good = "0,100us,1ms,50us"
    inst.command("SOUR1:PULS:PER 5ms;:SOUR1:LIST:PULS " + good)
    before = table_query(inst, 1)
    cases = [
        ("SOUR1:LIST:PULS 0,100us,200us,50us", -221),  # overlaps: 2 x 100 us + 50 us gap
        ("SOUR1:LIST:PULS 1ms,50us,0,100us", -221),  # onsets not increasing
        ("SOUR1:LIST:PULS 0,100us,4.9ms,100us", -221),  # runs past the 5 ms period
        ("SOUR1:LIST:PULS 0,100us,1ms", -109),  # a width missing
        ("SOUR1:LIST:PULS", -109),
        ("SOUR1:LIST:PULS 0,2s", -222),  # width over 1 s
        ("SOUR1:LIST:PULS 0,56ns", -222),  # width under 64 ns
        ("SOUR1:LIST:PULS -1us,10us", -222),  # negative onset
        ("SOUR1:LIST:PULS 3601,10us", -222),  # onset over 3600 s
        ("SOUR1:LIST:PULS 0,10us,90us,10us", -221),  # 90 us apart: over the 10 kHz limit
        ("SOUR1:LIST:PULS 0,200us,600us,10us", -221),  # 400 us active in 600 us: duty cycle
        ("SOUR1:LIST:PULS 0,10Hz", -131),
        ("SOUR1:LIST:PULS APP,500us,10us", -221),  # appended before the last onset
        ("SOUR1:LIST:PULS:APP 2ms,10us", -113),
    ]
    for command, code in cases:
        inst.write(command)
        assert [c for c, _ in inst.errors()] == [code], command
        assert table_query(inst, 1) == before, command
        assert inst.query("SOUR1:LIST:COUN?;:SOUR1:LIST?") == "2;0", command
    # List mode on: the table is checked against every later change too.
    inst.command("SOUR1:LIST ON")
    inst.write("SOUR1:PULS:PER 1.1ms")  # the 50 us pulse at 1 ms ends after 1.15 ms
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("SOUR1:PULS:PER?;:SOUR1:LIST?") == "5.000000E-03;1"
    inst.write("SOUR1:PULS:GAP 900us")  # 2 x 100 us + 900 us reaches the pulse at 1 ms
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("SOUR1:PULS:GAP?") == "5.000000E-05"


def test_list_on_needs_a_playable_table(inst: ScpiClient) -> None:
    inst.write("SOUR1:LIST ON")
    err = inst.errors()
    assert [c for c, _ in err] == [-221] and "table" in err[0][1]
    assert inst.query("SOUR1:LIST?") == "0"
    # A table loaded for list mode is checked against the settings when list mode goes on.
    inst.command("SOUR1:PULS:PER 10ms;:SOUR1:LIST:PULS 0,100us,8ms,100us")
    inst.command("SOUR1:PULS:PER 5ms")  # fine for the regular pulses, not for the table
    inst.write("SOUR1:LIST ON")
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("SOUR1:LIST?") == "0"
    inst.command("SOUR1:PULS:PER 10ms;:SOUR1:LIST ON")
    assert inst.query("SOUR1:LIST?") == "1"
    # Turning list mode off needs playable regular settings: a 300 us period suits the new
    # table, not the regular 2 x 200 us + 50 us pulse.
    inst.command("SOUR1:LIST:PULS 0,10us;:SOUR1:PULS:PER 300us")
    inst.write("SOUR1:LIST OFF")
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("SOUR1:LIST?;:SOUR1:PULS:PER?") == "1;3.000000E-04"


def test_limits_apply_to_each_table_pulse(inst: ScpiClient) -> None:
    # 6 mA: a 100 us phase keeps the charge-density limit, a 200 us one does not.
    inst.write("SOUR1:CURR 6mA")
    assert [c for c, _ in inst.errors()] == [-221]
    inst.command("SOUR1:PULS:PER 10ms;:SOUR1:LIST:PULS 0,100us,5ms,40us;:SOUR1:LIST ON")
    inst.command("SOUR1:CURR 6mA")
    assert inst.query("SOUR1:CURR?") == "6.000000E-03"
    inst.write("SOUR1:LIST:PULS 0,100us,5ms,200us")
    assert [c for c, _ in inst.errors()] == [-221]
    assert table_query(inst, 1) == "0.000000E+00,1.000000E-04,5.000000E-03,4.000000E-05"
    inst.write("SOUR1:LIST OFF")  # the regular 200 us phase at 6 mA
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("SOUR1:LIST?") == "1"
