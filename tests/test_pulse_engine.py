"""The four lead channels, configured over SCPI, measured on captures of the executed PIO.

Every timing assertion is exact, in 125 MHz cycles. Captures come from the virtual board
executing the programs the firmware loaded, with their DMA contents: nothing here computes
the intended waveform from the settings.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picostim.client import ScpiClient
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

US = 125  # cycles per microsecond
STOP_LATENCY = 100_000 * US  # a loose bound: main-loop poll + transport on a loaded machine


def phases(wf: Waveform, ch: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return wf.pulses("ch%d_a" % ch), wf.pulses("ch%d_b" % ch)


def gaps(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> set[int]:
    """Phase-1 end to the start of the phase 2 that follows it, for every complete pulse."""
    out = set()
    for _ra, fa in a:
        later = [rb for rb, _ in b if rb >= fa]
        if later:
            out.add(later[0] - fa)
    return out


def rises(wf: Waveform, name: str) -> list[int]:
    """Rising edges of a signal, except one in the window's last cycle (its sync would
    fall outside the window)."""
    return [e.cycle for e in wf.edges(name) if e.level and e.cycle < wf.cycles - 1]


def start(inst: ScpiClient, *commands: str) -> None:
    for c in commands:
        inst.command(c)
    inst.command("OUTP:GLOB ON")


def test_defaults_are_typical_drg_settings(inst: ScpiClient) -> None:
    assert inst.query("SOUR1:PULS:WIDT?") == "2.000000E-04"
    assert inst.query("SOUR1:PULS:GAP?") == "5.000000E-05"
    assert inst.query("SOUR1:FREQ?") == "2.000000E+01"
    assert inst.query("SOUR1:PULS:PER?") == "5.000000E-02"
    assert inst.query("SOUR1:PULS:SHAP?") == "BIPH"
    assert inst.query("SOUR1:PULS:POL?") == "NORM"
    assert inst.query("SOUR1:PULS:CYCL?") == "25000,6250,6250000"
    assert inst.query("OUTP1?") == "0"
    assert inst.query("OUTP:GLOB?") == "0"


def test_biphasic_pulse_is_exact_and_balanced(inst: ScpiClient, vb: VirtualBoard) -> None:
    start(inst, "SOUR1:PULS:WIDT 200us;GAP 50us", "SOUR1:FREQ 1kHz", "OUTP1 ON")
    wf = vb.capture(0.02)
    a, b = phases(wf, 1)
    assert len(a) >= 15 and len(b) >= 15
    assert {f - r for r, f in a} == {200 * US}
    assert {f - r for r, f in b} == {200 * US}
    # gap: end of phase A to start of the following phase B
    assert gaps(a, b) == {50 * US}
    periods = {r2 - r1 for (r1, _), (r2, _) in zip(a, a[1:], strict=False)}
    assert periods == {1000 * US}  # zero period-to-period jitter
    for ch in (2, 3, 4):  # leads not enabled stay at rest
        assert wf.edges("ch%d_a" % ch) == [] and wf.initial_level("ch%d_a" % ch) == 0


def test_pins_never_high_together(inst: ScpiClient, vb: VirtualBoard) -> None:
    start(inst, "SOUR1:PULS:WIDT 10us;GAP 0", "SOUR1:FREQ 5kHz", "OUTP1 ON")
    wf = vb.capture(0.01)
    a, b = phases(wf, 1)
    assert a and b
    for ra, fa in a:
        for rb, fb in b:
            assert fb <= ra or rb >= fa


def test_inverted_polarity_starts_on_pin_b(inst: ScpiClient, vb: VirtualBoard) -> None:
    start(inst, "SOUR1:PULS:POL INV", "SOUR1:PULS:WIDT 100us;:SOUR1:FREQ 2kHz", "OUTP1 ON")
    wf = vb.capture(0.01)
    a, b = phases(wf, 1)
    # Phase 1 is on B: each A pulse starts exactly width + gap after a B pulse starts.
    starts_b = {r for r, _ in b}
    assert a and all(r - (100 + 50) * US in starts_b for r, _ in a if r > 150 * US)


def test_monophasic_uses_one_pin(inst: ScpiClient, vb: VirtualBoard) -> None:
    start(inst, "SOUR1:PULS:SHAP MON", "SOUR1:FREQ 1kHz", "OUTP1 ON")
    wf = vb.capture(0.01)
    a, b = phases(wf, 1)
    assert len(a) >= 8 and b == []
    assert {f - r for r, f in a} == {200 * US}


def test_four_leads_start_together_apart_from_their_delays(
    inst: ScpiClient, vb: VirtualBoard
) -> None:
    delays_us = [0, 10, 250, 777]
    for ch, d in enumerate(delays_us, 1):
        inst.command("SOUR%d:FREQ 500;:SOUR%d:PULS:WIDT 100us;:SOUR%d:DEL %dus" % (ch, ch, ch, d))
        inst.command("OUTP%d ON" % ch)
    inst.command("OUTP:GLOB ON")
    wf = vb.capture(0.02)
    first = [wf.pulses("ch%d_a" % ch)[0][0] for ch in range(1, 5)]
    # The window may open mid-period; compare each lead's pulse train phase to lead 1's.
    period = 250_000
    offsets = [(f - first[0]) % period for f in first]
    assert offsets == [d * US for d in delays_us]


def test_train_duration_gives_exact_pulse_count(inst: ScpiClient, vb: VirtualBoard) -> None:
    # 10 ms at 1 kHz: pulses start at 0..9 ms -> exactly 10 pulses, each complete.
    inst.command("SOUR1:FREQ 1kHz;:SOUR1:TRA:DUR 10ms;:OUTP1 ON")
    wf_before = vb.capture(0.001)
    assert wf_before.edges("ch1_a") == []
    cap = vb.start_capture(0.05)
    inst.write("OUTP:GLOB ON")
    wf = cap.result()
    a, b = phases(wf, 1)
    assert len(a) == 10 and len(b) == 10
    assert {f - r for r, f in a + b} == {200 * US}


def test_bursts_exact(inst: ScpiClient, vb: VirtualBoard) -> None:
    inst.command("SOUR1:PULS:WIDT 50us;:SOUR1:FREQ 2kHz")
    inst.command("SOUR1:BURS:PER 5ms;COUN 3")
    assert inst.query("SOUR1:BURS:COUN?;PER?") == "3;5.000000E-03"
    start(inst, "OUTP1 ON")
    wf = vb.capture(0.03)
    rises = [r for r, _ in wf.pulses("ch1_a")]
    steps = [b - a for a, b in zip(rises, rises[1:], strict=False)]
    # within a burst 500 us apart; bursts 5 ms apart: 3 pulses then a 4 ms pause
    pattern = [500 * US, 500 * US, 4000 * US]
    k = steps.index(4000 * US) + 1
    assert len(steps[k:]) >= 6
    assert steps[k:] == (pattern * 10)[: len(steps[k:])]


def test_impossible_combination_is_221_and_changes_nothing(inst: ScpiClient) -> None:
    inst.command("SOUR1:FREQ 1kHz")
    inst.write("SOUR1:PULS:WIDT 600us")  # 2 x 600 us + gap > 1 ms period
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("SOUR1:PULS:WIDT?") == "2.000000E-04"


def test_out_of_range_is_222_and_changes_nothing(inst: ScpiClient) -> None:
    inst.write("SOUR1:PULS:WIDT 2s")
    assert [c for c, _ in inst.errors()] == [-222]
    inst.write("SOUR2:PULS:WIDT -1us")
    assert [c for c, _ in inst.errors()] == [-222]
    assert inst.query("SOUR1:PULS:WIDT?;:SOUR2:PULS:WIDT?") == "2.000000E-04;2.000000E-04"


def test_wrong_unit_is_131(inst: ScpiClient) -> None:
    inst.write("SOUR1:PULS:WIDT 200Hz")
    assert [c for c, _ in inst.errors()] == [-131]


def test_settings_round_to_the_cycle_and_report_what_is_used(inst: ScpiClient) -> None:
    inst.command("SOUR1:PULS:WIDT 100.003us")  # 12500.375 cycles -> 12500
    assert inst.query("SOUR1:PULS:WIDT?") == "1.000000E-04"
    inst.command("SOUR1:PULS:WIDT 100.005us")  # 12500.625 -> 12501 cycles = 100.008 us
    assert inst.query("SOUR1:PULS:CYCL?").split(",")[0] == "12501"
    assert inst.query("SOUR1:PULS:WIDT?") == "1.000080E-04"
    inst.command("SOUR1:FREQ 3")  # 41666666.67 cycles -> 41666667
    assert inst.query("SOUR1:PULS:CYCL?").split(",")[2] == "41666667"


def test_long_period_is_exact(inst: ScpiClient) -> None:
    inst.command("SOUR1:PULS:PER 3600")
    assert inst.query("SOUR1:PULS:CYCL?") == "25000,6250,450000000000"
    assert inst.query("SOUR1:FREQ?") == "2.777778E-04"


def test_short_and_long_forms_with_si_suffixes(inst: ScpiClient) -> None:
    inst.command("source2:pulse:width 0.2ms")
    inst.command("SOUR2:PULS:GAP 2e-5")
    assert inst.query("SOUR2:PULS:CYCL?") == "25000,2500,6250000"
    inst.command("SOUR2:PULS:WIDT MIN")
    assert inst.query("SOUR2:PULS:CYCL?").split(",")[0] == "8"
    inst.command("SOUR2:PULS:WIDT DEF")
    assert inst.query("SOUR2:PULS:WIDT?") == "2.000000E-04"


def test_change_while_running_never_truncates_a_pulse(inst: ScpiClient, vb: VirtualBoard) -> None:
    start(inst, "SOUR1:FREQ 1kHz;:SOUR1:PULS:WIDT 100us", "OUTP1 ON")
    import threading

    def change() -> None:
        for w in (150, 80, 120, 100):
            inst.command("SOUR1:PULS:WIDT %dus" % w)

    t = threading.Timer(0.005, change)
    t.start()
    wf = vb.capture(0.06)
    t.join()
    widths = {f - r for r, f in wf.pulses("ch1_a") + wf.pulses("ch1_b")}
    assert widths <= {150 * US, 80 * US, 120 * US, 100 * US}
    a, b = phases(wf, 1)
    # every phase A is followed by a phase B of the same width
    for (ra, fa), (rb, fb) in zip(a, [p for p in b if p[0] > a[0][0]], strict=False):
        assert fb - rb == fa - ra


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    width=st.integers(8, 40 * US),
    gap=st.one_of(st.just(0), st.integers(8, 40 * US)),
    extra=st.integers(0, 300 * US),
)
def test_random_settings_are_emitted_exactly(
    inst: ScpiClient, vb: VirtualBoard, width: int, gap: int, extra: int
) -> None:
    inst.write("OUTP:GLOB OFF;*RST")
    active = 2 * width
    period = max(12_500, 2 * active, 2 * width + gap + 11) + extra
    ns = lambda c: "%dns" % (c * 8)  # noqa: E731
    inst.command("SOUR1:PULS:WIDT %s;GAP %s;PER %s" % (ns(width), ns(gap), ns(period)))
    assert inst.query("SOUR1:PULS:CYCL?") == "%d,%d,%d" % (width, gap, period)
    start(inst, "OUTP1 ON")
    wf = vb.capture(0.004)
    a, b = phases(wf, 1)
    assert len(a) >= 3
    assert {f - r for r, f in a} == {width}
    assert {f - r for r, f in b} == {width}
    assert {r2 - r1 for (r1, _), (r2, _) in zip(a, a[1:], strict=False)} == {period}
    assert gaps(a[:-1], b) == {gap}


def test_sync_marks_the_train_start_and_optionally_every_pulse(
    inst: ScpiClient, vb: VirtualBoard
) -> None:
    inst.command("SOUR1:FREQ 1kHz;:OUTP1 ON")
    cap = vb.start_capture(0.03)
    inst.command("OUTP:GLOB ON")
    wf = cap.result()
    a = wf.pulses("ch1_a")
    sync = wf.pulses("sync")
    assert len(a) >= 5
    # one sync pulse, 1 us long, 1 cycle after the first phase of the train's first pulse
    assert sync == [(a[0][0] + 1, a[0][0] + 1 + 125)]
    inst.command("OUTP:GLOB OFF;:OUTP:SYNC:MODE PULS;:OUTP:GLOB ON")
    wf = vb.capture(0.02)
    assert len(rises(wf, "ch1_a")) >= 8
    assert rises(wf, "sync") == [r + 1 for r in rises(wf, "ch1_a")]


def test_sync_follows_the_chosen_lead_and_its_polarity(inst: ScpiClient, vb: VirtualBoard) -> None:
    inst.command("SOUR3:FREQ 1kHz;:SOUR3:PULS:POL INV;:SOUR3:DEL 100us;:OUTP3 ON;:OUTP1 ON")
    inst.command("OUTP:SYNC:SOUR 3;MODE PULS")
    inst.command("OUTP:GLOB ON")
    wf = vb.capture(0.02)
    first_phase = rises(wf, "ch3_b")  # inverted: the first phase is on pin B
    assert len(first_phase) >= 8
    assert rises(wf, "sync") == [r + 1 for r in first_phase]


def test_sync_off(inst: ScpiClient, vb: VirtualBoard) -> None:
    inst.command("OUTP:SYNC OFF;:SOUR1:FREQ 1kHz;:OUTP1 ON;:OUTP:GLOB ON")
    wf = vb.capture(0.01)
    assert wf.pulses("ch1_a") and wf.edges("sync") == []


def assert_stopped_after(wf: Waveform, cause: int, a: list[tuple[int, int]]) -> None:
    """The firmware stops a lead by dropping its ARM line once it has seen `cause`: no pulse
    starts after that, the pulse in flight ends whole, and the reaction is one main-loop
    pass (on a loaded machine the virtual board's transport adds to it: bounded loosely)."""
    arm_fall = [e.cycle for e in wf.edges("arm1") if not e.level]
    assert arm_fall and cause < arm_fall[0] < cause + STOP_LATENCY
    assert a[-1][0] < arm_fall[0]
    assert {f - r for r, f in a} == {200 * US}


def _external(inst: ScpiClient, mode: str, *setup: str) -> None:
    inst.command("TRIG:SOUR EXT;MODE %s" % mode)
    for c in setup:
        inst.command(c)
    inst.command("OUTP:GLOB ON")


def test_external_trigger_starts_every_lead_on_the_edge(
    inst: ScpiClient, vb: VirtualBoard
) -> None:
    _external(
        inst, "NORM", "SOUR1:FREQ 1kHz;:SOUR1:TRA:DUR 5ms;:OUTP1 ON", "SOUR2:DEL 1ms;:OUTP2 ON"
    )
    idle = vb.capture(0.01)
    assert idle.edges("ch1_a") == []  # armed, waiting for the trigger
    cap = vb.start_capture(0.03)
    vb.trigger(0.001)
    wf = cap.result()
    edge = [e.cycle for e in wf.edges("trigger") if e.level][0]
    a1, a2 = wf.pulses("ch1_a"), wf.pulses("ch2_a")
    assert len(a1) == 5  # 5 ms at 1 kHz
    # constant latency from the trigger edge: PIO wait, then the pulse-start segment
    latency = a1[0][0] - edge
    assert 0 < latency < 20
    assert a2[0][0] - a1[0][0] == 1000 * US  # lead 2's delay, exactly


def test_normal_mode_retriggers_after_the_train(inst: ScpiClient, vb: VirtualBoard) -> None:
    _external(inst, "NORM", "SOUR1:FREQ 1kHz;:SOUR1:TRA:DUR 3ms;:OUTP1 ON")
    for _ in range(3):
        cap = vb.start_capture(0.03)
        vb.trigger(0.001)
        assert len(cap.result().pulses("ch1_a")) == 3


def test_toggle_mode_second_edge_stops(inst: ScpiClient, vb: VirtualBoard) -> None:
    _external(inst, "TOGG", "SOUR1:FREQ 1kHz;:OUTP1 ON")
    cap = vb.start_capture(0.08)
    vb.trigger(0.001)
    import time as _t

    _t.sleep(0.03)
    vb.trigger(0.001)
    wf = cap.result()
    edges = [e.cycle for e in wf.edges("trigger") if e.level]
    a = wf.pulses("ch1_a")
    assert len(edges) == 2 and a
    assert a[0][0] > edges[0]
    assert_stopped_after(wf, edges[1], a)


def test_gated_mode_runs_while_high(inst: ScpiClient, vb: VirtualBoard) -> None:
    _external(inst, "GAT", "SOUR1:FREQ 1kHz;:OUTP1 ON")
    cap = vb.start_capture(0.06)
    vb.trigger(0.02)  # high for 20 ms
    wf = cap.result()
    high = [e.cycle for e in wf.edges("trigger")]
    a = wf.pulses("ch1_a")
    assert len(high) == 2 and a
    assert high[0] < a[0][0]
    assert_stopped_after(wf, high[1], a)


def test_bus_trigger(inst: ScpiClient, vb: VirtualBoard) -> None:
    inst.command("TRIG:SOUR BUS;:SOUR1:FREQ 1kHz;:SOUR1:TRA:DUR 4ms;:OUTP1 ON;:OUTP:GLOB ON")
    assert vb.capture(0.01).edges("ch1_a") == []
    cap = vb.start_capture(0.02)
    inst.command("*TRG")
    assert len(cap.result().pulses("ch1_a")) == 4


def test_trigger_source_cannot_change_while_output_on(inst: ScpiClient) -> None:
    inst.command("OUTP:GLOB ON")
    inst.write("TRIG:SOUR EXT")
    assert [c for c, _ in inst.errors()] == [-221]
    assert inst.query("TRIG:SOUR?") == "IMM"


def test_bus_trigger_never_cuts_a_pulse(inst: ScpiClient, vb: VirtualBoard) -> None:
    # NORMal: a *TRG while the train plays is ignored and never re-prepares it mid-pulse.
    inst.command("TRIG:SOUR BUS;:SOUR1:PULS:WIDT 1ms;:SOUR1:FREQ 200;:OUTP1 ON;:OUTP:GLOB ON")
    cap = vb.start_capture(0.05)
    for _ in range(4):
        inst.command("*TRG")
    wf = cap.result()
    a, b = phases(wf, 1)
    assert len(a) >= 5
    assert {f - r for r, f in a + b} == {1000 * US}
    rises_a = [r for r, _ in a]
    assert {y - x for x, y in zip(rises_a, rises_a[1:], strict=False)} == {5000 * US}
