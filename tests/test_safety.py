"""PicoStim's safety guarantees, each tested the way its fault happens on a bench.

Faults come in through the virtual board's bench, as they would in a lab: the power switch,
Ctrl-C and the REPL on the serial port, the front-panel button, the interlock loop, a firmware
that hangs or meets an exception it did not expect, a power cut at a flash write. Every result
is judged on a capture of the executed PIO output (levels and DAC current, in 125 MHz cycles)
or on what the instrument itself reports. docs/safety.md lists each guarantee with the test
that proves it and the latency measured here.

Time only passes inside capture windows or while a condition is polled against a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from statistics import median

import pytest
from support import read_until, wait_until

from picostim.client import ScpiClient
from picostim.pinmap import PINS
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

US = 125  # cycles per microsecond
MS = 125_000  # cycles per millisecond
AMPS_PER_CODE = 1.5e-6  # DAC code step of the reference build
PASSCODE = "sesame42"
LEADS = (1, 2, 3, 4)
LEAD_SIGNALS = tuple("ch%d_%s" % (n, p) for n in LEADS for p in "ab")
ARM_SIGNALS = tuple("arm%d" % n for n in LEADS)
REST_SIGNALS = (*LEAD_SIGNALS, "sync", *ARM_SIGNALS)
REST_GPIOS = (*PINS["LEAD_A"], *PINS["LEAD_B"], PINS["SYNC"], *PINS["ARM"])
LED_GPIO = PINS["LED"]
DEFAULT_LIMITS = "SYST:LIM:CURR 6mA;FREQ 10000;DUTY 50;SHAN 1.5;AREA 0.03;CHAR 2uC"
NO_FAULT = '0,"No fault"'
# Long, slow pulses: an action taken while phase A is high surely lands inside a pulse.
SLOW = ("SOUR1:FREQ 10", "SOUR1:PULS:WIDT 20ms;GAP 5ms")

measured: dict[str, str] = {}  # latencies seen by this run, printed at the end (pytest -s)


def report(name: str, cycles: int) -> None:
    measured[name] = "%.3f ms" % (cycles / MS)


# --------------------------------------------------------------------------- helpers


class Window:
    """A capture window opened before acting, closed even if the actions fail (the board
    records one window at a time):  `with Window(vb, 0.3) as w: ...`, then `w.wf`."""

    def __init__(self, vb: VirtualBoard, seconds: float) -> None:
        self.vb = vb
        self.seconds = seconds

    def __enter__(self) -> Window:
        self._cap = self.vb.start_capture(self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wf = self._cap.result()


def wait_idn(inst: ScpiClient, timeout: float = 20.0) -> str:
    """Ask *IDN? until the rebooting instrument answers; then resynchronise the link."""
    link = inst.link
    saved = link.timeout
    link.timeout = 0.2
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            link.reset_input_buffer()
            inst.write("*IDN?")
            line = link.readline()
            while line and not line.startswith(b"PicoStim,"):
                line = link.readline()
            if line:
                idn = line.decode().strip()
                # Earlier *IDN? may still be answered: read up to a fresh *OPC? reply.
                inst.write("*OPC?")
                link.timeout = saved
                while inst.read_line() != "1":
                    pass
                return idn
    finally:
        link.timeout = saved
    raise AssertionError("the board did not answer *IDN? within %.0f s" % timeout)


def to_repl(inst: ScpiClient) -> bytes:
    """Ctrl-C on the port, as mpremote or a terminal sends it; returns what the board printed."""
    inst.link.reset_input_buffer()
    inst.link.write(b"\x03")
    return read_until(inst.link, b">>> ")


def repl(inst: ScpiClient, line: str) -> str:
    """Type one line at the friendly REPL; return its output."""
    inst.link.write(line.encode() + b"\r")
    out = read_until(inst.link, b">>> ").decode(errors="replace")
    assert "Traceback" not in out, out
    return out.split("\n", 1)[1].rsplit(">>> ", 1)[0].strip() if "\n" in out else ""


def command(inst: ScpiClient, cmd: str) -> None:
    """Send a setting; fail on any error it queues, except -225, the board running out of
    heap (an open firmware issue, docs/safety.md), after which it is sent again: what a
    test judges is the outcome, asserted afterwards, never this."""
    for _ in range(3):
        inst.write(cmd)
        errs = inst.errors()
        if errs != [(-225, "Out of memory")]:
            break
    assert errs == [], "%r: %s" % (cmd, errs)


def codes(inst: ScpiClient, *commands: str) -> list[int]:
    """Send commands; the error codes they queued."""
    for c in commands:
        inst.write(c)
    return [c for c, _ in inst.errors()]


def high_gpios(vb: VirtualBoard) -> list[int]:
    levels = vb.levels()
    return [g for g in REST_GPIOS if levels[g]]


def rises(wf: Waveform, names: tuple[str, ...], after: int = -1) -> dict[str, list[int]]:
    """Rising edges later than cycle `after`, by signal (signals without any left out)."""
    out = {}
    for n in names:
        r = [e.cycle for e in wf.edges(n) if e.level and e.cycle > after]
        if r:
            out[n] = r
    return out


def falls(wf: Waveform, name: str) -> list[int]:
    return [e.cycle for e in wf.edges(name) if not e.level]


def pulses(wf: Waveform, ch: int = 1) -> list[tuple[int, int, int, int]]:
    """(rise A, fall A, rise B, fall B) of each biphasic pulse (NORMal polarity) whose phase A
    lies in the window; rise B / fall B are -1 if no phase B followed before the next pulse."""
    a = wf.pulses("ch%d_a" % ch)
    b = wf.pulses("ch%d_b" % ch)
    out = []
    for i, (ra, fa) in enumerate(a):
        nxt = a[i + 1][0] if i + 1 < len(a) else wf.cycles
        pb = next(((rb, fb) for rb, fb in b if fa <= rb < nxt), (-1, -1))
        out.append((ra, fa, *pb))
    return out


def assert_whole(wf: Waveform, ch: int, width: int, gap: int) -> list[tuple[int, int, int, int]]:
    """Every pulse of the window has both phases, each exactly `width`, `gap` apart."""
    ps = pulses(wf, ch)
    for ra, fa, rb, fb in ps:
        if rb < 0 and fa + gap + width >= wf.cycles:
            continue  # phase B after the window's end
        assert (fa - ra, rb - fa, fb - rb) == (width, gap, width), (
            "pulse at %.3f ms: phase A %d, gap %d, phase B %d cycles"
            % (ra / MS, fa - ra, rb - fa, fb - rb)
        )
    return ps


def dac_steps(wf: Waveform, ch: int = 1) -> list[tuple[int, int]]:
    """Lead `ch`'s DAC code as (cycle in the window, code); the first is the level at 0."""
    return [
        (max(0, c - wf.t0), round(a / AMPS_PER_CODE)) for c, a in wf.currents["ch%d_current" % ch]
    ]


def code_at(steps: list[tuple[int, int]], cycle: int) -> int:
    level = steps[0][1]
    for c, code in steps:
        if c > cycle:
            break
        level = code
    return level


def wait_phase_a(vb: VirtualBoard, ch: int = 1, timeout: float = 3.0) -> None:
    """Return just after lead `ch`'s phase-A pin goes high (a fresh pulse, not one under way).

    The pin levels come from the PIO executor, which can run behind real time on a loaded
    machine: the bound is generous, the wait ends as soon as the edge is seen."""
    pin = PINS["LEAD_A"][ch - 1]
    wait_until(lambda: not vb.levels()[pin], timeout, "phase A low")
    wait_until(lambda: vb.levels()[pin], timeout, "phase A high")


def start(inst: ScpiClient, *commands: str, ch: int = 1, vb: VirtualBoard | None = None) -> None:
    """Configure, turn lead `ch` and the output on; with `vb`, return once it is armed (a
    lead stopped moments before starts again only after a quiet time)."""
    for c in commands:
        command(inst, c)
    command(inst, "OUTP%d ON" % ch)
    command(inst, "OUTP:GLOB ON")
    if vb is not None:
        arm = PINS["ARM"][ch - 1]
        wait_until(lambda: vb.levels()[arm], 2, "lead %d armed" % ch)


def unlock(inst: ScpiClient, timeout: float = 15.0) -> float:
    """Give the right passcode until the slow-down lets it through; seconds it took."""
    t0 = time.monotonic()

    def attempt() -> bool:
        errs = codes(inst, 'SYST:UNL "%s"' % PASSCODE)
        assert set(errs) <= {212, -225}, errs  # wait; or out of heap (see command())
        return not errs

    wait_until(attempt, timeout, "the right passcode accepted")
    assert inst.query("SYST:LOCK?") == "0"
    return time.monotonic() - t0


def tidy(inst: ScpiClient, vb: VirtualBoard) -> None:
    """Back to a neutral instrument: output off, no heartbeat, no lock, session, faults,
    default settings and limits; then at rest for a while (a lead stopped moments ago stays
    quiet that long: the next test starts with none pending)."""
    inst.link.reset_input_buffer()
    inst.write("*CLS;:OUTP:GLOB OFF")
    inst.write("SYST:HEAR 0")
    if inst.query("SYST:LOCK?") == "1":
        unlock(inst)
    for cmd in ("SYST:SESS:LIM 0", "SYST:SESS:RES", "*RST", DEFAULT_LIMITS, "SYST:FAUL:CLE"):
        command(inst, cmd)
    assert inst.query("SYST:FAUL?") == NO_FAULT
    # (a pulse in flight when the output went off still ends: 45 ms at most in these tests)
    assert rises(vb.capture(0.12), REST_SIGNALS, after=50 * MS) == {}


def restore_inputs(vb: VirtualBoard) -> None:
    vb.set_interlock(True)
    vb.set_input(PINS["BUTTON"], 1)


@pytest.fixture(scope="module", autouse=True)
def print_latencies() -> Iterator[None]:
    yield
    if measured:
        print("\nmeasured latencies:")
        for k, v in measured.items():
            print("  %-50s %s" % (k, v))


@pytest.fixture
def bench(inst: ScpiClient, vb: VirtualBoard) -> Iterator[VirtualBoard]:
    """The bench for a test that leaves the firmware running; tidied up afterwards."""
    yield vb
    restore_inputs(vb)
    tidy(inst, vb)


@pytest.fixture
def fresh(inst: ScpiClient, vb: VirtualBoard) -> Iterator[VirtualBoard]:
    """The bench for a test that resets, hangs or breaks into the firmware: afterwards the
    board is power-cycled and must answer *IDN? again, with the bench back to its defaults."""
    yield vb
    if hasattr(vb, "cut_power_at_write"):
        vb.cut_power_at_write(None)
    restore_inputs(vb)
    vb.power_cycle()
    assert wait_idn(inst).startswith("PicoStim,")
    tidy(inst, vb)


def all_leads_running(inst: ScpiClient, vb: VirtualBoard) -> None:
    """All four leads at 1 kHz with the sync output: every output pin busy."""
    for n in LEADS:
        command(inst, "SOUR%d:FREQ 1kHz;:SOUR%d:DEL %dus;:OUTP%d ON" % (n, n, 100 * n, n))
    command(inst, "OUTP:GLOB ON")
    wait_until(lambda: all(vb.levels()[g] for g in PINS["ARM"]), 2, "every lead armed")


def assert_stopped_at_rest(wf: Waveform, vb: VirtualBoard) -> int:
    """The train ran until a hard stop in the window, then every output stayed low.

    The stop begins when lead 1's ARM line falls (the firmware's way out, or a reset's
    pull-down); the state machines are halted right after, so a phase under way may still
    rise within that first millisecond, never later. Returns the cycle from which every
    output stays low."""
    assert wf.initial_level("arm1") == 1, "lead 1 was not running when the window opened"
    stop = falls(wf, "arm1")[0]
    assert rises(wf, REST_SIGNALS, after=stop + MS) == {}
    quiet = max(e.cycle for n in REST_SIGNALS for e in wf.edges(n))
    assert all(wf.level(n, wf.cycles) == 0 for n in REST_SIGNALS)
    assert high_gpios(vb) == []
    return quiet


# --------------------------------------------------------------------------- rest state


def test_power_up_rests_every_output_before_and_after_main_runs(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    all_leads_running(inst, vb)
    with Window(vb, 0.5) as w:
        vb.power_cycle()
        assert high_gpios(vb) == []  # the chip has just started: only the board's pull-downs
        assert wait_idn(inst).startswith("PicoStim,")
    wf = w.wf
    stop = falls(wf, "arm1")[0]  # the power went: the pull-downs take every pad low
    assert rises(wf, REST_SIGNALS, after=stop) == {}  # nothing rose, before or after main
    assert all(wf.level(n, wf.cycles) == 0 for n in REST_SIGNALS)
    assert all(rises(wf, (n,)) for n in ("ch1_a", "ch4_b"))  # it was busy
    assert [e.level for e in wf.edges("led") if e.cycle > stop] in ([], [0])
    assert inst.query("OUTP:GLOB?;:OUTP1?;:SOUR1:CURR?") == "0;0;0.000000E+00"
    assert inst.query("SYST:RES:CAUS?") == "POWER"


def test_rst_finishes_the_pulse_in_flight_then_rests(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    start(inst, *SLOW, vb=vb)
    with Window(vb, 0.3) as w:
        wait_phase_a(vb)
        inst.write("*RST")
        assert inst.query("OUTP:GLOB?;:OUTP1?;:SOUR1:PULS:WIDT?") == "0;0;2.000000E-04"
    wf = w.wf
    ps = assert_whole(wf, 1, 20 * MS, 5 * MS)
    ra, fa, rb, fb = ps[-1]
    assert rises(wf, LEAD_SIGNALS, after=rb) == {}
    stop = falls(wf, "arm1")[-1]
    assert ra < stop < fa  # *RST came during phase A: that pulse still ended whole
    report("*RST -> rest (pulse in flight completes)", fb - stop)
    assert high_gpios(vb) == []


def test_soft_reset_rests_outputs_and_runs_main_again(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    """Ctrl-C then Ctrl-D at the friendly REPL: the board soft-reboots and main.py runs."""
    vb = fresh
    all_leads_running(inst, vb)
    assert b"KeyboardInterrupt" in to_repl(inst)
    assert high_gpios(vb) == []
    # A script run at the REPL may leave a lead pin driven; a soft reset keeps pin levels.
    repl(inst, "import machine; p = machine.Pin(%d, machine.Pin.OUT, value=1)" % PINS["LEAD_A"][0])
    assert high_gpios(vb) == [PINS["LEAD_A"][0]]
    inst.link.write(b"\x04")
    read_until(inst.link, b"soft reboot\r\n")
    assert wait_idn(inst).startswith("PicoStim,")
    assert high_gpios(vb) == []
    wf = vb.capture(0.05)
    assert {n: wf.edges(n) for n in REST_SIGNALS if wf.edges(n)} == {}
    assert inst.query("OUTP:GLOB?") == "0"


def test_ctrl_c_rests_outputs_and_stops_the_watchdog(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    all_leads_running(inst, vb)
    restarts = vb.info()["restarts"]
    with Window(vb, 1.4) as w:
        assert b"KeyboardInterrupt" in to_repl(inst)
    wf = w.wf
    stop = assert_stopped_at_rest(wf, vb)
    report("Ctrl-C -> rest (from the window start)", stop)
    # Well past the 1 s watchdog: still at the REPL, not reset (mpremote can work).
    assert wf.cycles - stop > 1100 * MS
    assert vb.info()["restarts"] == restarts
    assert repl(inst, "print(6 * 7)") == "42"


def test_machine_reset_from_the_repl_comes_back_at_rest(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    all_leads_running(inst, vb)
    to_repl(inst)
    inst.link.write(b"import machine; machine.reset()\r")
    assert wait_idn(inst).startswith("PicoStim,")
    assert high_gpios(vb) == []
    wf = vb.capture(0.05)
    assert rises(wf, REST_SIGNALS) == {}
    assert inst.query("OUTP:GLOB?;:OUTP1?") == "0;0"


def test_uncaught_exception_rests_outputs(inst: ScpiClient, fresh: VirtualBoard) -> None:
    vb = fresh
    all_leads_running(inst, vb)
    inst.link.reset_input_buffer()
    with Window(vb, 0.3) as w:
        vb.inject_exception("bench test")
        out = read_until(inst.link, b">>> ")
    wf = w.wf
    assert b"RuntimeError: injected fault: bench test" in out  # reported, not swallowed
    stop = assert_stopped_at_rest(wf, vb)
    report("uncaught exception -> rest (from the injection)", stop)
    assert stop < 250 * MS  # one pass of the main loop, plus a loaded host's scheduling


def test_watchdog_resets_a_hung_firmware_into_rest(inst: ScpiClient, fresh: VirtualBoard) -> None:
    vb = fresh
    start(inst, "SOUR1:FREQ 1kHz", vb=vb)
    with Window(vb, 1.6) as w:
        vb.hang()
    wf = w.wf
    reset = falls(wf, "arm1")[0]  # the reset's pull-downs: the frozen firmware never disarmed
    # The PIO plays on by itself until the reset, and not one pulse after it.
    assert pulses(wf)[-1][0] > reset - 2 * MS
    assert rises(wf, REST_SIGNALS, after=reset) == {}
    report("watchdog: hang -> reset into rest", reset)
    assert 800 * MS < reset < 1300 * MS
    assert wait_idn(inst).startswith("PicoStim,")
    assert high_gpios(vb) == []
    assert inst.query("SYST:RES:CAUS?") == "WATCHDOG"
    assert 230 in [c for c, _ in inst.errors()]
    assert inst.query("OUTP:GLOB?") == "0"
    assert "230 boot, reset cause WATCHDOG" in inst.query("SYST:LOG?")


# --------------------------------------------------------------------------- button


def test_press_shorter_than_the_debounce_does_nothing(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    command(inst, "SOUR1:FREQ 1kHz;:OUTP1 ON")
    with Window(vb, 0.25) as w:
        vb.press_button(0.010)
    wf = w.wf
    assert rises(wf, REST_SIGNALS) == {}
    assert inst.query("OUTP:GLOB?") == "0"
    vb.press_button(0.1)  # the same press held past 30 ms does count
    wait_until(lambda: inst.query("OUTP:GLOB?") == "1", 2, "output on")


def test_short_press_toggles_the_output(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    command(inst, "SOUR1:FREQ 1kHz;:OUTP1 ON")
    vb.press_button(0.1)
    wait_until(lambda: inst.query("OUTP:GLOB?") == "1", 2, "output on")
    assert len(vb.capture(0.02).pulses("ch1_a")) >= 15
    vb.press_button(0.1)
    wait_until(lambda: inst.query("OUTP:GLOB?") == "0", 2, "output off")
    wf = vb.capture(0.05)
    assert rises(wf, ("ch1_a", "arm1")) == {}
    assert inst.errors() == []


def test_button_never_starts_output_while_a_fault_is_latched(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    command(inst, "SOUR1:FREQ 1kHz;:OUTP1 ON")
    vb.set_interlock(False)
    wait_until(lambda: "201" in inst.query("SYST:FAUL?"), 2, "fault 201")
    vb.set_interlock(True)
    assert inst.query("SYST:INT?") == "CLOS"
    assert codes(inst) == [201]
    with Window(vb, 0.3) as w:
        vb.press_button(0.1)
    wf = w.wf
    assert rises(wf, REST_SIGNALS) == {}
    assert inst.query("OUTP:GLOB?") == "0"
    assert codes(inst) == [204]  # the press was refused, and said why
    vb.press_button(2.2)  # a long press clears the fault (the loop is closed again)
    assert inst.query("SYST:FAUL?") == NO_FAULT
    assert inst.query("OUTP:GLOB?") == "0"  # and does not turn anything on
    assert rises(vb.capture(0.1), REST_SIGNALS) == {}  # (and a hand takes this long to return)
    vb.press_button(0.1)
    wait_until(lambda: inst.query("OUTP:GLOB?") == "1", 2, "output on")


# --------------------------------------------------------------------------- status LED


def led_highs(wf: Waveform) -> list[tuple[int, int]]:
    return wf.pulses("led")


def test_status_led_patterns_are_distinct(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    tol = 25 * MS  # the LED follows the main loop: a loaded host delays it a little
    off = vb.capture(0.5)
    assert off.edges("led") == [] and off.initial_level("led") == 0
    command(inst, "OUTP:GLOB ON")
    led_is = lambda level: vb.levels()[LED_GPIO] == level  # noqa: E731
    wait_until(lambda: led_is(1), 1, "LED on")  # (the main loop's next pass sets it)
    on = vb.capture(0.5)
    assert on.edges("led") == [] and on.initial_level("led") == 1
    vb.set_interlock(False)
    wait_until(lambda: "201" in inst.query("SYST:FAUL?"), 2, "fault 201")
    fault = vb.capture(1.2)
    highs = led_highs(fault)
    assert len(highs) >= 4
    # Judged by the median: a host that stalls the simulated firmware can stretch one blink.
    assert abs(median(f - r for r, f in highs) - 100 * MS) <= tol
    starts = [r for r, _ in highs]
    assert abs(median(b - a for a, b in zip(starts, starts[1:], strict=False)) - 200 * MS) <= tol
    vb.set_interlock(True)
    assert codes(inst, "SYST:FAUL:CLE") == [201]
    command(inst, 'SYST:LOCK "%s"' % PASSCODE)
    locked = vb.capture(2.3)
    highs = led_highs(locked)
    assert 1 <= len(highs) <= 2
    assert any(abs(f - r - 100 * MS) <= tol for r, f in highs)
    assert locked.high_cycles("led") < locked.cycles // 8  # a blip, not a blink
    if len(highs) == 2:
        assert abs(highs[1][0] - highs[0][0] - 2000 * MS) <= tol
    command(inst, "OUTP:GLOB ON")  # locked and on: steady on
    wait_until(lambda: led_is(1), 1, "LED on")
    lon = vb.capture(0.3)
    assert lon.edges("led") == [] and lon.initial_level("led") == 1
    command(inst, "OUTP:GLOB OFF")
    unlock(inst)


# --------------------------------------------------------------------------- interlock


def interlock_opened(wf: Waveform) -> int:
    return falls(wf, "interlock")[0]


def test_interlock_opened_mid_pulse_completes_it_and_starts_no_other(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    start(inst, *SLOW, vb=vb)
    with Window(vb, 0.4) as w:
        wait_phase_a(vb)
        vb.set_interlock(False)
    wf = w.wf
    opened = interlock_opened(wf)
    ps = assert_whole(wf, 1, 20 * MS, 5 * MS)
    ra, fa, rb, fb = ps[-1]
    assert ra < opened < fa  # the loop opened during phase A of the last pulse
    assert rises(wf, LEAD_SIGNALS, after=rb) == {}  # no new pulse in the 300 ms that follow
    assert wf.cycles - fb > 250 * MS
    report("interlock open -> rest (rest of the pulse in flight)", fb - opened)
    reaction = falls(wf, "arm1")[-1] - opened
    report("interlock open -> firmware disarm (ARM low)", reaction)
    assert 0 < reaction < 100 * MS
    assert inst.query("SYST:INT?") == "OPEN"
    assert codes(inst) == [201]
    assert inst.query("SYST:FAUL?").startswith("201,")
    assert inst.query("OUTP:GLOB?") == "0"


def test_output_stays_off_after_the_interlock_closes_until_turned_on(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    start(inst, "SOUR1:FREQ 1kHz", vb=vb)
    vb.set_interlock(False)
    wait_until(lambda: inst.query("SYST:INT?") == "OPEN", 2, "interlock open")
    assert codes(inst) == [201]
    assert codes(inst, "OUTP:GLOB ON") == [205]  # the loop is still open
    vb.set_interlock(True)
    wait_until(lambda: inst.query("SYST:INT?") == "CLOS", 2, "interlock closed")
    wf = vb.capture(0.2)
    assert rises(wf, REST_SIGNALS) == {}
    assert inst.query("OUTP:GLOB?") == "0"
    assert codes(inst, "OUTP:GLOB ON") == [204]  # the fault is still latched
    assert rises(vb.capture(0.05), REST_SIGNALS) == {}
    command(inst, "SYST:FAUL:CLE")
    command(inst, "OUTP:GLOB ON")
    assert len(vb.capture(0.02).pulses("ch1_a")) >= 15


def test_pio_gate_stops_pulses_while_the_firmware_hangs(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    start(inst, *SLOW, vb=vb)
    vb.hang()
    with Window(vb, 0.3) as w:
        wait_phase_a(vb)
        vb.set_interlock(False)
    wf = w.wf
    # The firmware is frozen: lead 1's ARM line stays high, only the PIO can stop the lead.
    assert wf.initial_level("arm1") == 1 and wf.edges("arm1") == []
    opened = interlock_opened(wf)
    ps = assert_whole(wf, 1, 20 * MS, 5 * MS)
    ra, fa, rb, fb = ps[-1]
    assert ra < opened < fa
    assert rises(wf, LEAD_SIGNALS, after=rb) == {}
    assert wf.cycles - fb > 150 * MS
    report("interlock open, firmware hung -> rest", fb - opened)
    # Then the watchdog brings the firmware back, at rest.
    assert wait_idn(inst).startswith("PicoStim,")
    assert inst.query("SYST:RES:CAUS?") == "WATCHDOG"
    assert high_gpios(vb) == []


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_silence_stops_output(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    command(inst, "SYST:HEAR 0.3")
    command(inst, "SOUR1:FREQ 1kHz;:OUTP1 ON")
    with Window(vb, 0.6) as w:
        inst.write("OUTP:GLOB ON")  # the host's last line: silence from here
    wf = w.wf
    ps = assert_whole(wf, 1, 200 * US, 50 * US)
    # The line left the host just after the window opened: the output stops no sooner than
    # the timeout after it, and no later than the main loop's poll and one pulse after that.
    end = ps[-1][3]
    report("heartbeat: window start -> rest, minus the 300 ms timeout", end - 300 * MS)
    assert 300 * MS < end < 350 * MS
    assert rises(wf, LEAD_SIGNALS, after=ps[-1][3]) == {}
    assert codes(inst) == [202]
    assert inst.query("SYST:FAUL?").startswith("202,")
    assert inst.query("OUTP:GLOB?") == "0"


def test_heartbeat_is_fed_by_any_line_and_ignores_silence_while_off(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    command(inst, "SYST:HEAR 0.5")
    assert inst.query("SYST:HEAR?") == "5.000000E-01"
    vb.capture(0.6)  # silent, output off
    assert codes(inst) == [] and inst.query("SYST:FAUL?") == NO_FAULT
    start(inst, "SOUR1:FREQ 1kHz", vb=vb)
    with Window(vb, 0.4) as w:
        until = time.monotonic() + 0.45
        while time.monotonic() < until:
            assert inst.query("*OPC?") == "1"
            time.sleep(0.05)  # a host polling every 50 ms, past the window's end
        command(inst, "SYST:HEAR 0")
    wf = w.wf
    starts = [p[0] for p in pulses(wf)]
    assert len(starts) >= 380
    assert {b - a for a, b in zip(starts, starts[1:], strict=False)} == {MS}
    assert codes(inst) == [] and inst.query("OUTP:GLOB?") == "1"


# --------------------------------------------------------------------------- instructor lock


LIMIT_QUERY = "SYST:LIM:CURR?;FREQ?;DUTY?;SHAN?;AREA?;CHAR?"


def test_lock_freezes_limits_and_settings_stay_free_within_them(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    command(inst, "SYST:LIM:CURR 2mA")
    command(inst, 'SYST:LOCK "%s"' % PASSCODE)
    assert inst.query("SYST:LOCK?") == "1"
    frozen = inst.query(LIMIT_QUERY)
    for cmd in (
        "SYST:LIM:CURR 5mA",
        "SYST:LIM:CURR 1mA",
        "SYST:LIM:FREQ 20000",
        "SYST:LIM:DUTY 80",
        "SYST:LIM:SHAN 1.8",
        "SYST:LIM:AREA 1",
        "SYST:LIM:CHAR 10uC",
        "SYST:SESS:LIM 10",
        "SYST:SESS:RES",
    ):
        assert codes(inst, cmd) == [210], cmd
    assert inst.query(LIMIT_QUERY) == frozen
    command(inst, "SOUR1:PULS:WIDT 100us;:SOUR1:FREQ 2kHz;:SOUR1:CURR 1.5mA")
    assert inst.query("SOUR1:CURR?") == "1.500000E-03"
    assert codes(inst, "SOUR1:CURR 2.5mA") == [-222]
    assert inst.query("SOUR1:CURR?") == "1.500000E-03"
    assert codes(inst, 'SYST:LOCK "another"') == [210]
    assert codes(inst, 'SYST:UNL "wrong"') == [211]
    unlock(inst)
    command(inst, "SYST:LIM:CURR 6mA")


def test_wrong_passcodes_are_slowed_down(inst: ScpiClient, bench: VirtualBoard) -> None:
    command(inst, 'SYST:LOCK "%s"' % PASSCODE)
    for _ in range(3):
        assert codes(inst, 'SYST:UNL "guess"') == [211]
    # Even the right passcode must now wait, and the lock stays shut meanwhile.
    inst.write('SYST:UNL "%s"' % PASSCODE)
    assert inst.errors() == [(212, "Too many wrong passcodes; wait;retry in 1 s")]
    assert inst.query("SYST:LOCK?") == "1"
    t0 = time.monotonic()
    # A fourth wrong passcode is only taken after that second...
    wait_until(lambda: codes(inst, 'SYST:UNL "guess"') == [211], 5, "fourth guess taken")
    first_wait = time.monotonic() - t0
    assert 0.8 < first_wait < 2.0
    # ... and earns twice the wait.
    inst.write('SYST:UNL "%s"' % PASSCODE)
    assert inst.errors() == [(212, "Too many wrong passcodes; wait;retry in 2 s")]
    second_wait = unlock(inst)
    assert 1.7 < second_wait < 3.0
    measured["wrong passcode slow-down, 3rd then 4th"] = "%.2f s, %.2f s" % (
        first_wait,
        second_wait,
    )


def test_lock_and_its_slow_down_survive_a_power_cycle(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    command(inst, "SYST:LIM:CURR 1mA")
    command(inst, 'SYST:LOCK "%s"' % PASSCODE)
    frozen = inst.query(LIMIT_QUERY)
    for _ in range(3):
        assert codes(inst, 'SYST:UNL "guess"') == [211]
    vb.power_cycle()
    assert wait_idn(inst).startswith("PicoStim,")
    assert inst.query("SYST:LOCK?") == "1"
    assert inst.query(LIMIT_QUERY) == frozen
    assert codes(inst, "SYST:LIM:CURR 6mA") == [210]
    assert codes(inst, "SOUR1:CURR 2mA") == [-222]
    # Pulling the plug does not buy a free guess.
    assert codes(inst, 'SYST:UNL "%s"' % PASSCODE) == [212]
    assert unlock(inst) > 0.5
    command(inst, "SYST:LIM:CURR 6mA")


def test_corrupt_lock_record_fails_closed(inst: ScpiClient, fresh: VirtualBoard) -> None:
    """A lock record that fails its check (a worn flash cell) keeps the board locked, at the
    default limits, and still starts: it never unlocks, nor leaves the instrument dead."""
    vb = fresh
    command(inst, "SYST:LIM:CURR 1mA")
    command(inst, 'SYST:LOCK "%s"' % PASSCODE)
    to_repl(inst)
    repl(inst, "t = open('lock.json').read()")
    repl(
        inst, "f = open('lock.json', 'w'); f.write(t[:5] + chr(ord(t[5]) ^ 1) + t[6:]); f.close()"
    )
    vb.power_cycle()
    assert wait_idn(inst).startswith("PicoStim,")
    assert inst.query("SYST:LOCK?") == "1"
    assert inst.query("SYST:LIM:CURR?") == "6.000000E-03"  # the factory default
    assert codes(inst, "SYST:LIM:CURR 6.1mA") == [210]
    assert codes(inst, 'SYST:UNL "%s"' % PASSCODE) == [211]  # the record is unreadable
    to_repl(inst)  # the instructor's way out: delete the record at the REPL
    repl(inst, "import os; os.remove('lock.json')")


# --------------------------------------------------------------------------- ramp, amplitude


def test_ramp_raises_the_current_over_the_ramp_time(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    command(inst, "SOUR1:FREQ 1kHz;:SOUR1:RAMP 0.3;:SOUR1:CURR 1mA;:OUTP1 ON")
    target = round(1e-3 / AMPS_PER_CODE)
    with Window(vb, 0.6) as w:
        inst.write("OUTP:GLOB ON")
    wf = w.wf
    steps = dac_steps(wf)
    ps = assert_whole(wf, 1, 200 * US, 50 * US)
    t_start = ps[0][0]
    seen = [(ra - t_start, code_at(steps, ra)) for ra, *_ in ps]
    assert seen[0][1] <= target // 5  # the first pulses are near zero
    levels = [c for _, c in seen]
    assert levels == sorted(levels) and max(levels) == target  # rises, never overshoots
    full = next(t for t, c in seen if c == target)
    mid = code_at(steps, t_start + 150 * MS)
    assert target // 4 <= mid <= 3 * target // 4
    assert 250 * MS <= full <= 450 * MS
    report("ramp 0.3 s: output on -> full current", full)
    assert inst.errors() == []


def test_current_decreases_at_once(inst: ScpiClient, bench: VirtualBoard) -> None:
    """Rises are paced (a step at most every 50 ms); a decrease never waits for that."""
    vb = bench
    command(inst, "SOUR1:FREQ 10;:SOUR1:PULS:WIDT 1ms;GAP 50us;:SOUR1:RAMP 0")
    command(inst, "SOUR1:CURR 0.2mA")
    start(inst, vb=vb)
    vb.capture(0.12)  # steady at 0.2 mA: the last step is long past
    with Window(vb, 0.25) as w:
        command(inst, "SOUR1:CURR 0.5mA")  # a rise step, applied within a few ms
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 > 0.01, 1, "the rise applied")
        inst.write("SOUR1:CURR 0.05mA")  # well inside the 50 ms after that rise
    wf = w.wf
    steps = dac_steps(wf)
    codes_seen = [c for _, c in steps]
    mid, low = round(0.5e-3 / AMPS_PER_CODE), round(0.05e-3 / AMPS_PER_CODE)
    assert codes_seen == [round(0.2e-3 / AMPS_PER_CODE), mid, low], steps  # one step each
    since_rise = steps[2][0] - steps[1][0]
    report("current decrease 10 ms after a rise step -> applied (from the rise)", since_rise)
    assert since_rise < 40 * MS  # not held back to the 50 ms step spacing
    for ra, _fa, _rb, fb in assert_whole(wf, 1, MS, 50 * US):
        if fb < 0:
            continue  # phase B after the window's end
        assert code_at(steps, ra) == code_at(steps, fb)


def test_current_never_changes_within_a_pulse(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    command(inst, "SOUR1:PULS:WIDT 100us;:SOUR1:FREQ 2kHz;:SOUR1:RAMP 0.3")
    command(inst, "SOUR1:CURR 2mA;:OUTP1 ON")
    with Window(vb, 0.6) as w:
        inst.write("OUTP:GLOB ON")
        for amps in ("1mA", "1.5mA", "0.5mA", "2mA"):
            command(inst, "SOUR1:CURR " + amps)
    wf = w.wf
    steps = dac_steps(wf)
    ps = assert_whole(wf, 1, 100 * US, 50 * US)
    assert len({c for _, c in steps}) >= 5  # the current did change, often
    for ra, _fa, rb, fb in ps:
        if rb < 0:
            continue  # phase B after the window's end
        inside = [c for c, _ in steps[1:] if ra <= c <= fb]
        assert inside == [], "DAC written during the pulse at %.3f ms" % (ra / MS)
        assert code_at(steps, ra) == code_at(steps, rb)


# --------------------------------------------------------------------------- session timer


def test_session_limit_stops_the_output(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    command(inst, "SYST:SESS:LIM 0.3;:SYST:SESS:RES")
    command(inst, "SOUR1:FREQ 1kHz;:OUTP1 ON")
    with Window(vb, 0.6) as w:
        inst.write("OUTP:GLOB ON")
    wf = w.wf
    ps = assert_whole(wf, 1, 200 * US, 50 * US)
    ran = ps[-1][3] - ps[0][0]
    report("session limit 0.3 s: on-time played, minus 300 ms", ran - 300 * MS)
    assert 295 * MS < ran < 350 * MS
    assert rises(wf, LEAD_SIGNALS, after=ps[-1][3]) == {}
    assert codes(inst) == [203]
    assert inst.query("SYST:SESS:REM?") == "0.000000E+00"
    assert codes(inst, "OUTP:GLOB ON") == [204]
    command(inst, "SYST:FAUL:CLE")  # a used-up session is not cleared that way
    assert inst.query("SYST:FAUL?").startswith("203,")
    assert codes(inst, "OUTP:GLOB ON") == [204]
    command(inst, "SYST:SESS:RES")  # the instructor's reset is
    assert inst.query("SYST:FAUL?") == NO_FAULT
    command(inst, "OUTP:GLOB ON")
    assert vb.capture(0.02).pulses("ch1_a")


def test_session_time_counts_down_and_survives_a_power_cycle(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    command(inst, "SYST:SESS:LIM 60;:SYST:SESS:RES")
    assert inst.query("SYST:SESS:REM?") == "6.000000E+01"
    start(inst, "SOUR1:FREQ 1kHz", vb=vb)
    seen = [float(inst.query("SYST:SESS:REM?"))]
    wait_until(
        lambda: seen.append(float(inst.query("SYST:SESS:REM?"))) or seen[-1] < 59.8, 3, "count"
    )
    assert seen == sorted(seen, reverse=True)
    command(inst, "OUTP:GLOB OFF")
    left = inst.query("SYST:SESS:REM?")
    vb.capture(0.2)  # off: the time is not counted
    assert inst.query("SYST:SESS:REM?") == left
    vb.power_cycle()
    assert wait_idn(inst).startswith("PicoStim,")
    assert inst.query("SYST:SESS:LIM?;REM?") == "6.000000E+01;" + left


# --------------------------------------------------------------------------- event log


def test_safety_events_are_logged_and_survive_a_power_cycle(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    vb.set_interlock(False)
    wait_until(lambda: inst.query("SYST:INT?") == "OPEN", 2, "interlock open")
    vb.set_interlock(True)
    wait_until(lambda: inst.query("SYST:INT?") == "CLOS", 2, "interlock closed")
    assert codes(inst) == [201]  # an opening latches the fault even with the output off
    command(inst, 'SYST:LOCK "%s"' % PASSCODE)
    codes(inst, "SYST:LIM:CURR 1mA", 'SYST:UNL "guess"')
    unlock(inst)
    vb.power_cycle()
    assert wait_idn(inst).startswith("PicoStim,")
    log = inst.query("SYST:LOG?")
    entries = [e.strip('"') for e in log.split('","')]
    wanted = (
        " 0 interlock open",
        " 201 Interlock opened; outputs stopped",
        " 0 interlock closed",
        " 0 limits locked",
        " 210 limit change refused",
        " 211 wrong passcode",
        " 0 limits unlocked",
    )
    found = [max((i for i, e in enumerate(entries) if e.endswith(w)), default=-1) for w in wanted]
    assert -1 not in found and found == sorted(found), entries
    before, after = entries[found[-1]], entries[-1]
    assert after.endswith(" 0 boot, reset cause POWER")
    assert int(after.split(":")[0]) == int(before.split(":")[0]) + 1  # the next boot


# --------------------------------------------------------------------------- presets


PRESET_SETTINGS = (
    "SOUR1:FREQ 500;:SOUR1:PULS:WIDT 100us;GAP 20us;POL INV",
    "SOUR1:CURR 0.5mA;:SOUR1:RAMP 0.7",
    "SOUR2:FREQ 50;:SOUR2:PULS:SHAP MON;:SOUR2:PULS:WIDT 1ms",
    "SOUR2:BURS:PER 1;COUN 3",
)
PRESET_QUERY = (
    "SOUR1:PULS:CYCL?;POL?;SHAP?;:SOUR1:CURR?;:SOUR1:RAMP?;"
    ":SOUR2:PULS:CYCL?;SHAP?;:SOUR2:BURS:PER?;COUN?;:OUTP1?;:OUTP2?;:OUTP:GLOB?"
)


def test_preset_round_trip_with_outputs_off(inst: ScpiClient, bench: VirtualBoard) -> None:
    vb = bench
    for c in PRESET_SETTINGS:
        command(inst, c)
    command(inst, "OUTP1 ON;:OUTP2 ON")
    command(inst, "*SAV 3")
    saved = inst.query(PRESET_QUERY)
    command(inst, "OUTP:GLOB ON")
    command(inst, "*RST")
    defaults = inst.query(PRESET_QUERY)
    assert defaults != saved
    command(inst, "OUTP1 ON;:OUTP:GLOB ON")
    command(inst, "*RCL 3")  # recalled with the output on: it goes off first
    expected = saved.split(";")
    expected[-3:] = ["0", "0", "0"]
    assert inst.query(PRESET_QUERY).split(";") == expected
    wf = vb.capture(0.05)
    assert rises(wf, LEAD_SIGNALS, after=2 * MS) == {}


def test_preset_outside_the_limits_in_force_is_refused(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    """A preset saved under wider limits, recalled after the instructor narrowed them."""
    command(inst, "SOUR1:FREQ 1kHz;:SOUR1:CURR 3mA")
    command(inst, "*SAV 5")
    command(inst, "SOUR1:CURR 0;:SYST:LIM:CURR 1mA")
    command(inst, "SOUR2:PULS:WIDT 300us")
    inst.write("*RCL 5")
    assert inst.query("SOUR1:CURR?;:SOUR1:FREQ?;:SOUR2:PULS:WIDT?") == (
        "0.000000E+00;2.000000E+01;2.000000E-04"
    )


def test_corrupt_or_missing_preset_gives_an_error_and_safe_defaults(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    for c in PRESET_SETTINGS:
        command(inst, c)
    command(inst, "*SAV 4;*SAV 5")
    to_repl(inst)
    # Preset 4: one flipped bit, as a worn flash cell gives; preset 5: a file overwritten by
    # a script at the REPL; preset 8: deleted there.
    repl(inst, "t = open('preset4.json').read()")
    repl(
        inst,
        "f = open('preset4.json', 'w'); f.write(t[:5] + chr(ord(t[5]) ^ 1) + t[6:]); f.close()",
    )
    repl(inst, "f = open('preset5.json', 'w'); f.write('not a preset'); f.close()")
    repl(inst, "import os; os.remove('preset8.json') if 'preset8.json' in os.listdir() else 0")
    assert repl(inst, "print(open('preset4.json').read()[:9])") == '{"leaes":'
    assert repl(inst, "print(open('preset5.json').read())") == "not a preset"
    vb.power_cycle()
    assert wait_idn(inst).startswith("PicoStim,")
    defaults = inst.query(PRESET_QUERY)
    for n in (4, 5):
        command(inst, "SOUR1:CURR 1mA;:SOUR1:FREQ 200;:OUTP1 ON;:OUTP:GLOB ON")
        assert codes(inst, "*RCL %d" % n) == [221], n
        assert inst.query(PRESET_QUERY) == defaults
        assert rises(vb.capture(0.02), LEAD_SIGNALS, after=MS) == {}
    command(inst, "SOUR1:FREQ 200")
    assert codes(inst, "*RCL 8") == [220]
    assert inst.query("SOUR1:FREQ?") == "2.000000E+02"  # an empty preset changes nothing
    assert "221 preset 4" in inst.query("SYST:LOG?")


@pytest.mark.skipif(
    not hasattr(VirtualBoard, "cut_power_at_write"),
    reason="this virtual board cannot cut the power at a flash write",
)
def test_power_cut_at_any_flash_write_of_sav_keeps_the_previous_preset(
    inst: ScpiClient, fresh: VirtualBoard
) -> None:
    vb = fresh
    old, new = "1.000000E-04", "1.500000E-04"
    command(inst, "SOUR1:PULS:WIDT 100us;*SAV 7")
    before = vb.flash_writes()
    assert inst.query("*SAV 7;*OPC?") == "1"
    typical = vb.flash_writes() - before
    assert typical >= 2
    outcomes: list[tuple[int, str, str]] = []
    for k in range(1, 25):  # until a *SAV is done before the k-th write comes
        command(inst, "SOUR1:PULS:WIDT 100us;*SAV 7")  # the preset as it was
        command(inst, "SOUR1:PULS:WIDT 150us")
        cuts = vb.power_cuts()
        vb.cut_power_at_write(k)
        inst.write("*SAV 7;*OPC?")
        cut = wait_until(
            lambda: (
                (vb.power_cuts() > cuts and "cut")  # noqa: B023
                or (inst.link.in_waiting and "done")
            ),
            10,
            "the *SAV to finish or the power to go",
        )
        if cut == "cut":
            assert wait_idn(inst).startswith("PicoStim,")  # the filesystem mounts, main runs
        else:
            vb.cut_power_at_write(None)
            assert inst.read_line() == "1"
        assert codes(inst, "*RCL 7") == [], (k, cut)  # never corrupt, never gone
        width = inst.query("SOUR1:PULS:WIDT?")
        assert width in (old, new), (k, width)
        outcomes.append((k, cut, width))
        if cut == "done":
            break
    assert outcomes[-1][1:] == ("done", new), outcomes
    assert len(outcomes) > 2
    # A cut before the new record is in place leaves the previous one.
    assert outcomes[0][1:] == ("cut", old), outcomes
    measured["*SAV flash block writes (each cut in turn)"] = "%d (typical %d)" % (
        len(outcomes) - 1,
        typical,
    )


# --------------------------------------------------------------------------- limits under churn


def starts_of(wf: Waveform, ch: int = 1) -> list[int]:
    return [p[0] for p in pulses(wf, ch)]


def test_quick_off_on_never_cuts_a_pulse_nor_outpaces_the_frequency_limit(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    command(inst, "SYST:LIM:FREQ 20")
    start(inst, *SLOW, vb=vb)
    with Window(vb, 0.5) as w:
        for _ in range(20):
            inst.write("OUTP:GLOB OFF")
            inst.write("OUTP:GLOB ON")
            assert inst.query("*OPC?") == "1"
            time.sleep(0.01)
    wf = w.wf
    assert_whole(wf, 1, 20 * MS, 5 * MS)
    starts = starts_of(wf)
    assert len(starts) >= 3
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 50 * MS, [g / MS for g in gaps]  # 20 Hz at most
    assert inst.errors() == []


def test_settings_changes_while_running_keep_pulses_whole_and_within_limits(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    command(inst, "SYST:LIM:FREQ 20")
    start(inst, "SOUR1:FREQ 20", "SOUR1:PULS:WIDT 10ms;GAP 1ms")
    with Window(vb, 0.5) as w:
        for i in range(20):
            command(inst, "SOUR1:PULS:WIDT %dms" % (4 if i % 2 else 10))
            time.sleep(0.01)
    wf = w.wf
    ps = pulses(wf)
    for ra, fa, rb, fb in ps[:-1]:
        assert fa - ra == fb - rb and rb - fa == MS, (ra / MS, fa - ra, rb - fa, fb - rb)
        assert fa - ra in (4 * MS, 10 * MS)
    starts = [p[0] for p in ps]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) >= 3 and min(gaps) >= 50 * MS, [g / MS for g in gaps]


def test_bursts_are_held_to_the_frequency_and_duty_limits(
    inst: ScpiClient, bench: VirtualBoard
) -> None:
    vb = bench
    command(inst, "SOUR1:PULS:WIDT 25us;GAP 0;:SOUR1:PULS:PER 100us")
    command(inst, "SOUR1:BURS:PER 150.1us")
    # Two pulses 100 us apart, then the next burst 50.1 us later: 20 kHz and ~100 % duty.
    assert codes(inst, "SOUR1:BURS:COUN 2") == [-221]
    assert inst.query("SOUR1:BURS:COUN?") == "1"
    command(inst, "SOUR1:BURS:PER 1ms;COUN 3")
    start(inst)
    wf = vb.capture(0.01)
    starts = [r for r, _ in wf.pulses("ch1_a")]
    assert len(starts) >= 20
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - a >= 100 * US
        assert 2 * 25 * US * 100 <= 50 * (b - a)


@pytest.mark.parametrize(
    "header, good, shown, bad, why",
    [
        ("CURR", "2.5mA", "2.500500E-03", "-0.1uA", "0..6.1425E-03 A"),
        ("FREQ", "2kHz", "2.000000E+03", "100001", "1..100000 Hz"),
        ("SHAN", "-0.5", "-5.000000E-01", "1.86", "-3.00..1.85"),
        ("AREA", "0.5", "5.000000E-01", "1e-7", "1E-06..1 cm2"),
        ("CHAR", "0.3uC", "3.000000E-07", "-1e-20", "0..1E-04 C"),
    ],
)
def test_numeric_limits_take_exact_values_and_refuse_out_of_range_ones(
    inst: ScpiClient, header: str, good: str, shown: str, bad: str, why: str
) -> None:
    try:
        command(inst, "SYST:LIM:%s %s" % (header, good))
        assert inst.query("SYST:LIM:%s?" % header) == shown
        inst.write("SYST:LIM:%s %s" % (header, bad))
        assert inst.errors() == [(-222, "Data out of range;" + why)]
        assert inst.query("SYST:LIM:%s?" % header) == shown  # refused: nothing changed
    finally:
        command(inst, DEFAULT_LIMITS)
