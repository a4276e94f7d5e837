"""The board measuring its own outputs (MEASure<n>:...) and *TST?, over SCPI.

These run on the virtual board by default and on a real board with --port; only the tests that
take a capture need the virtual board's bench. On the virtual board the measured values are
the programmed cycles exactly.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picostim.client import ScpiClient
from picostim.sim import VirtualBoard

US = 125  # cycles per microsecond


def ns(cycles: int) -> str:
    return "%dns" % (cycles * 8)


def measure(inst: ScpiClient, query: str) -> str | list[tuple[int, str]]:
    """The reply to `query`, or the errors it queued (a failed query sends no reply)."""
    reply = inst.query(query + ";*OPC?")
    if reply.endswith(";1"):
        return reply[:-2]
    assert reply == "1"
    return inst.errors()


def measure_running(inst: ScpiClient, query: str) -> str | list[tuple[int, str]]:
    """As `measure`, once the lead runs (a lead stopped moments ago starts a little later)."""
    for _ in range(50):
        got = measure(inst, query)
        if not (isinstance(got, list) and got and "not running" in got[0][1]):
            return got
        time.sleep(0.01)
    return got


def configure(
    inst: ScpiClient, n: int, width: int, gap: int, period: int, before: str = "", after: str = ""
) -> None:
    """Lead n set up (each change is checked against the others: shortest pulse first), its
    output on."""
    inst.write("OUTP:GLOB OFF;*RST;*CLS")
    if before:
        inst.command(before)
    inst.command("SOUR%d:PULS:WIDT MIN;GAP 0;PER %s" % (n, ns(period)))
    inst.command("SOUR%d:PULS:WIDT %s;GAP %s" % (n, ns(width), ns(gap)))
    if after:
        inst.command(after)
    inst.command("OUTP%d ON;:OUTP:GLOB ON" % n)


def start_capture_and(vb: VirtualBoard, seconds: float, inst: ScpiClient, query: str) -> tuple:
    cap = vb.start_capture(seconds)
    try:
        got = inst.query(query)
    finally:
        wf = cap.result()
    return got, wf


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n=st.integers(1, 4),
    width=st.one_of(st.integers(8, 40), st.integers(8, 100 * US)),
    gap=st.one_of(st.just(0), st.integers(8, 40), st.integers(8, 100 * US)),
    extra=st.integers(0, 800 * US),
    polarity=st.sampled_from(["NORM", "INV"]),
    shape=st.sampled_from(["BIPH", "MON"]),
)
def test_measured_cycles_are_the_programmed_cycles(
    inst: ScpiClient, n: int, width: int, gap: int, extra: int, polarity: str, shape: str
) -> None:
    pulse = 2 * width + gap if shape == "BIPH" else width
    active = 2 * width if shape == "BIPH" else width
    # Within the default safety limits (50 % duty cycle at most), and at most 1 kHz: the
    # virtual board executes every lead's program in real time, stopped ones included.
    period = max(1000 * US, 2 * active, pulse + 12) + extra
    configure(inst, n, width, gap, period, "SOUR%d:PULS:POL %s;SHAP %s" % (n, polarity, shape))
    programmed = inst.query("SOUR%d:PULS:CYCL?" % n)
    assert programmed == "%d,%d,%d" % (width, gap, period)
    # Monophasic: there is no interphase gap, measured as 0.
    expected = "%d,%d,%d" % (width, gap if shape == "BIPH" else 0, period)
    assert measure_running(inst, "MEAS%d:CYCL?" % n) == expected


@pytest.mark.parametrize(
    "polarity, shape, gap",
    [("NORM", "BIPH", 50 * US), ("INV", "BIPH", 50 * US), ("NORM", "BIPH", 0),
     ("INV", "BIPH", 0), ("NORM", "MON", 50 * US), ("INV", "MON", 0)],
)  # fmt: skip
def test_polarity_gap_zero_and_monophasic(
    inst: ScpiClient, polarity: str, shape: str, gap: int
) -> None:
    configure(inst, 2, 100 * US, gap, 1000 * US, "SOUR2:PULS:POL %s;SHAP %s" % (polarity, shape))
    g = gap if shape == "BIPH" else 0
    assert measure_running(inst, "MEAS2:CYCL?") == "%d,%d,%d" % (100 * US, g, 1000 * US)


def test_seconds_forms(inst: ScpiClient) -> None:
    configure(inst, 1, 200 * US, 50 * US, 1000 * US)
    assert measure_running(inst, "MEAS1:WIDT?") == "2.000000E-04"
    assert measure(inst, "MEAS1:GAP?") == "5.000000E-05"
    assert measure(inst, "MEAS1:PER?") == "1.000000E-03"
    assert measure(inst, "MEASURE1:PERIOD?;:MEAS1:CYCLES?") == "1.000000E-03;25000,6250,125000"
    assert inst.errors() == []


def test_default_train_is_measured(inst: ScpiClient) -> None:
    """20 Hz, the defaults: the slowest pulse rate a full measurement handles in its time."""
    inst.command("OUTP1 ON;:OUTP:GLOB ON")
    assert measure_running(inst, "MEAS1:CYCL?") == inst.query("SOUR1:PULS:CYCL?")


def test_bursts_report_the_pulse_period(inst: ScpiClient) -> None:
    configure(inst, 1, 50 * US, 10 * US, 500 * US, after="SOUR1:BURS:PER 5ms;COUN 3")
    for _ in range(3):
        assert measure_running(inst, "MEAS1:CYCL?") == "%d,%d,%d" % (50 * US, 10 * US, 500 * US)


def test_a_lead_that_is_not_running_is_221(inst: ScpiClient) -> None:
    assert measure(inst, "MEAS1:WIDT?") == [(-221, "Settings conflict;lead not running")]
    inst.command("OUTP1 ON")  # enabled, but the global output is off
    assert measure(inst, "MEAS1:CYCL?") == [(-221, "Settings conflict;lead not running")]
    inst.command("OUTP:GLOB ON")
    assert measure(inst, "MEAS2:GAP?") == [(-221, "Settings conflict;lead not running")]
    inst.write("MEAS5:GAP?")
    assert inst.errors()[0][0] == -114
    inst.write("MEAS1:WIDT")
    assert inst.errors()[0][0] == -113  # query only


def test_too_slow_for_a_measurement_is_221(inst: ScpiClient) -> None:
    configure(inst, 1, 200 * US, 50 * US, 500_000 * US)  # 2 Hz
    got = measure_running(inst, "MEAS1:CYCL?")
    assert got == [(-221, "Settings conflict;period too long to measure")]


def test_measuring_leaves_the_output_alone(inst: ScpiClient, vb: VirtualBoard) -> None:
    configure(inst, 1, 100 * US, 20 * US, 1000 * US, "SOUR1:PULS:POL INV")
    measure_running(inst, "MEAS1:CYCL?")
    got, wf = start_capture_and(vb, 0.03, inst, "MEAS1:CYCL?;:MEAS1:CYCL?")
    assert got == "%d,%d,%d;%d,%d,%d" % ((100 * US, 20 * US, 1000 * US) * 2)
    b, a = wf.pulses("ch1_b"), wf.pulses("ch1_a")  # inverted: phase 1 on pin B
    assert len(b) >= 20 and len(a) >= 20
    assert {f - r for r, f in a + b} == {100 * US}
    assert {r2 - r1 for (r1, _), (r2, _) in zip(b, b[1:], strict=False)} == {1000 * US}
    assert {min(ra for ra, _ in a if ra >= fb) - fb for _, fb in b[:-1]} == {20 * US}


def test_self_test_passes_and_pulses_no_lead(inst: ScpiClient, vb: VirtualBoard) -> None:
    got, wf = start_capture_and(vb, 0.2, inst, "*TST?")
    assert got == "0"
    for ch in range(1, 5):
        for pin in "ab":
            name = "ch%d_%s" % (ch, pin)
            assert wf.edges(name) == [] and wf.initial_level(name) == 0
    # The measurement path was checked on a test signal on the sync output (a scope trigger):
    # whole pulses of 12345 cycles, 125001 apart, then low.
    sync = wf.pulses("sync")
    assert len(sync) >= 3 and {f - r for r, f in sync} == {12_345}
    assert {b[0] - a[0] for a, b in zip(sync, sync[1:], strict=False)} == {125_001}
    assert wf.level("sync", wf.cycles - 1) == 0


def test_self_test_passes(inst: ScpiClient) -> None:
    assert inst.query("*TST?") == "0"
    assert inst.errors() == []


def test_self_test_needs_the_outputs_off(inst: ScpiClient) -> None:
    inst.command("OUTP:GLOB ON")
    assert measure(inst, "*TST?") == [(-221, "Settings conflict;turn the outputs off first")]
    inst.command("SOUR1:FREQ 1kHz;:OUTP1 ON")
    inst.command("OUTP:GLOB OFF")
    assert inst.query("*TST?") == "0"  # right after a stop: waits for the pulse in flight
    inst.command("OUTP:GLOB ON")
    assert measure_running(inst, "MEAS1:PER?") == "1.000000E-03"  # the lead runs as before
