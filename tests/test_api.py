"""The Python API (`picostim.api.PicoStim`): settings, ordering, typed errors, safe exit.

Timing is judged on captures of the virtual board's executed PIO, exact in 125 MHz cycles.
Time passes only inside capture windows or while a condition is polled against a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import serial
from support import wait_until

from picostim import PicoStim as PicoStimFromPackage
from picostim.api import (
    CommandError,
    ExecutionError,
    FaultLatched,
    InstrumentError,
    InterlockOpen,
    LimitLocked,
    OutOfRange,
    PicoStim,
    PresetError,
    SettingsConflict,
    error_for,
    parse_value,
    plan_configure,
)
from picostim.client import PicoStimError, ScpiClient, ScpiError
from picostim.sim import VirtualBoard, registry
from picostim.sim.waveform import Waveform

US = 125  # cycles per microsecond
MS = 125_000
PRESENT_DEFAULTS: dict[str, Any] = {
    "width": 200e-6,
    "gap": 50e-6,
    "period": 50e-3,
    "shape": "BIPH",
    "current": 0.0,
    "delay": 0.0,
    "burst_count": 1,
    "burst_period": 0.0,
    "train": 0.0,
}


def capture_until(
    vb: VirtualBoard, seconds: float, ok: Callable[[Waveform], bool], timeout: float = 10.0
) -> Waveform:
    """Capture windows until one satisfies `ok` (a running lead restarts a few ms after a
    change); return the last window, for the test's exact assertions."""
    deadline = time.monotonic() + timeout
    while True:
        wf = vb.capture(seconds)
        if ok(wf) or time.monotonic() > deadline:
            return wf


def widths(wf: Waveform, name: str = "ch1_a") -> set[int]:
    return {f - r for r, f in wf.pulses(name)}


def periods(wf: Waveform, name: str = "ch1_a") -> set[int]:
    rises = [r for r, _ in wf.pulses(name)]
    return {b - a for a, b in zip(rises, rises[1:], strict=False)}


@pytest.fixture
def ps(port: str) -> Iterator[PicoStim]:
    """A connection to the test board, reset to defaults; its exit turns the outputs off."""
    with PicoStim.open(port, timeout=5) as conn:
        conn.reset()
        conn.clear_faults()
        yield conn


# --------------------------------------------------------------------------- running a lead


def test_configure_runs_a_channel_exactly(ps: PicoStim, vb: VirtualBoard) -> None:
    ch = ps.channel(1)
    # ramp 0: the current is set at once (while it ramps, the board skips pulses to step it)
    ch.configure(width=100e-6, gap=20e-6, frequency=1000, current=0.8e-3, ramp=0)
    ch.enable()
    ps.on()
    wf = capture_until(vb, 0.05, lambda wf: len(periods(wf)) == 1)
    a, b = wf.pulses("ch1_a"), wf.pulses("ch1_b")
    assert len(a) >= 45 and len(b) >= 45
    assert widths(wf, "ch1_a") == {100 * US} and widths(wf, "ch1_b") == {100 * US}
    assert periods(wf) == {1000 * US}
    # phase 2 starts exactly one gap after phase 1 ends
    assert {min(rb for rb, _ in b if rb >= fa) - fa for _, fa in a if fa < b[-1][0]} == {20 * US}
    for other in (2, 3, 4):
        assert wf.edges("ch%d_a" % other) == [] and wf.edges("ch%d_b" % other) == []


def test_settings_report_the_values_used(ps: PicoStim) -> None:
    ch = ps.channel(2)
    ch.configure(width=100.003e-6, frequency=1500, current=0.8e-3, polarity="inverted")
    s = ch.settings()
    # 100.003 us is 12500.375 cycles: the board plays 12500; 1/1500 s is 83333.3 -> 83333
    assert s["cycles"] == (12500, 6250, 83333)
    assert s["width"] == pytest.approx(100e-6, abs=1e-12)
    assert s["period"] == pytest.approx(83333 / 125e6, rel=1e-6)
    assert s["frequency"] == pytest.approx(125e6 / 83333, rel=1e-6)
    assert s["current"] == pytest.approx(533 * 1.5e-6)  # whole DAC steps of 1.5 uA
    assert (s["shape"], s["polarity"]) == ("biphasic", "inverted")
    assert (s["burst_count"], s["train"], s["delay"]) == (1, 0.0, 0.0)
    assert ps.channel(1).settings()["cycles"] == (25000, 6250, 6250000)  # untouched


def test_strings_pass_through_as_scpi_text(ps: PicoStim) -> None:
    sent = ps.channel(3).configure(width="0.15ms", gap="20us", period="2ms", current="0.3mA")
    assert "SOUR3:PULS:WIDT 0.15ms" in sent and "SOUR3:PULS:PER 2ms" in sent
    assert ps.channel(3).settings()["cycles"] == (150 * US, 20 * US, 2000 * US)


def test_status_snapshot(ps: PicoStim, vb: VirtualBoard) -> None:
    ps.channel(4).configure(frequency=50, current=1e-3)
    ps.channel(4).enable()
    st = ps.status()
    assert st.idn.board_id == vb.uid and st.idn.manufacturer == "PicoStim"
    assert [c.enabled for c in st.channels] == [False, False, False, True]
    assert st.channels[3].settings["frequency"] == pytest.approx(50)
    assert st.channels[3].current == pytest.approx(1e-3, abs=1e-6)
    assert (st.output_on, st.interlock_closed, st.faults, st.locked) == (False, True, [], False)
    assert st.session_remaining is None
    ps.on()
    assert ps.status().output_on and ps.is_on()


# --------------------------------------------------------------------------- ordering


def test_plan_puts_width_before_a_shorter_period_and_after_a_longer_one() -> None:
    up = plan_configure(1, {"frequency": 5000, "width": 50e-6}, PRESENT_DEFAULTS)
    assert up == ["SOUR1:PULS:WIDT 5e-05", "SOUR1:FREQ 5000"]
    present = dict(PRESENT_DEFAULTS, width=50e-6, period=200e-6)
    down = plan_configure(1, {"width": 200e-6, "frequency": 20}, present)
    assert down == ["SOUR1:FREQ 20", "SOUR1:PULS:WIDT 0.0002"]


def test_plan_orders_current_around_the_shape() -> None:
    biph = dict(PRESENT_DEFAULTS, current=0.8e-3)
    assert plan_configure(2, {"shape": "monophasic", "current": 0}, biph) == [
        "SOUR2:CURR 0",
        "SOUR2:PULS:SHAP monophasic",
    ]
    mon = dict(PRESENT_DEFAULTS, shape="MON")
    assert plan_configure(2, {"current": "0.8mA", "shape": "biphasic"}, mon) == [
        "SOUR2:PULS:SHAP biphasic",
        "SOUR2:CURR 0.8mA",
    ]


def test_plan_rejects_misuse() -> None:
    with pytest.raises(ValueError, match="not both"):
        plan_configure(1, {"frequency": 20, "period": 0.05}, PRESENT_DEFAULTS)
    with pytest.raises(TypeError, match="unknown"):
        plan_configure(1, {"widht": 1e-4}, PRESENT_DEFAULTS)
    with pytest.raises(ValueError, match="one value"):
        plan_configure(1, {"width": "200us;:OUTP:GLOB ON"}, PRESENT_DEFAULTS)


def test_parse_value_reads_scpi_suffixes_as_the_board_does() -> None:
    assert parse_value("200us", "s") == pytest.approx(200e-6)
    assert parse_value("0.2 ms", "s") == pytest.approx(200e-6)
    assert parse_value("2e-4", "s") == pytest.approx(200e-6)
    assert parse_value("0.8mA", "A") == pytest.approx(0.8e-3)  # M is milli in SCPI
    assert parse_value("1.5MAA", "A") == pytest.approx(1.5e6)
    assert parse_value("MAX", "s") == float("inf") and parse_value("min", "A") == 0
    assert parse_value("200Hz", "s") is None and parse_value("DEF", "s") is None


def test_configure_from_20hz_200us_to_5khz_50us_and_back(ps: PicoStim, vb: VirtualBoard) -> None:
    ch = ps.channel(1)
    ch.enable()
    ps.on()
    # Changed while running, both ways in one call each: the naive order (the frequency
    # first, then the width back) passes through a pulse longer than its period.
    sent = ch.configure(frequency=5000, width=50e-6)
    assert sent == ["SOUR1:PULS:WIDT 5e-05", "SOUR1:FREQ 5000"]
    fast = capture_until(
        vb, 0.01, lambda wf: periods(wf) == {200 * US} and len(wf.pulses("ch1_a")) >= 49
    )
    assert widths(fast) == {50 * US} and periods(fast) == {200 * US}
    assert len(fast.pulses("ch1_a")) >= 49  # every 200 us, none skipped

    sent = ch.configure(width=200e-6, frequency=20)
    assert sent == ["SOUR1:FREQ 20", "SOUR1:PULS:WIDT 0.0002"]
    slow = capture_until(
        vb, 0.16, lambda wf: periods(wf) == {50 * MS} and len(wf.pulses("ch1_a")) >= 3
    )
    assert widths(slow) == {200 * US} and periods(slow) == {50 * MS}
    assert ch.settings()["cycles"] == (200 * US, 50 * US, 50 * MS)
    assert ps.is_on() and ps.faults() == []


# (present settings, target in the order a caller would naively send it)
TRANSITIONS = [
    pytest.param({}, {"frequency": 5000, "width": 50e-6}, id="faster-and-narrower"),
    pytest.param(
        {"frequency": 5000, "width": 50e-6}, {"width": 200e-6, "frequency": 20}, id="back"
    ),
    pytest.param(
        {
            "width": 20e-6,
            "gap": 10e-6,
            "frequency": 10000,
            "burst_count": 10,
            "burst_period": 2e-3,
        },
        {"frequency": 200, "burst_count": 3, "burst_period": 20e-3},
        id="slower-bursts",
    ),  # fmt: skip
    pytest.param({"current": 0.8e-3}, {"shape": "monophasic", "current": 0}, id="to-monophasic"),
    pytest.param(
        {"shape": "monophasic"}, {"current": 0.8e-3, "shape": "biphasic"}, id="to-biphasic"
    ),
]


@pytest.mark.parametrize(("start", "target"), TRANSITIONS)
def test_configure_order_where_the_naive_order_is_rejected(
    ps: PicoStim, start: dict[str, Any], target: dict[str, Any]
) -> None:
    ch = ps.channel(1)
    ch.configure(**start)
    before = ch.settings()
    with pytest.raises(SettingsConflict) as err:
        for line in _in_given_order(target):
            ps.scpi(line)
    assert err.value.code == -221
    # configure() gets there in one call, from the same start.
    ps.reset()
    ch.configure(**start)
    assert ch.settings() == before
    ch.configure(**target)
    after: dict[str, Any] = dict(ch.settings())
    for name, value in target.items():
        if name == "shape":
            assert after["shape"] == value
        else:
            assert after[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name


def _in_given_order(target: dict[str, Any]) -> list[str]:
    """One line per setting, in the caller's order."""
    return [plan_configure(1, {k: v}, {})[0] for k, v in target.items()]


# --------------------------------------------------------------------------- typed errors


def test_out_of_range_is_typed_and_keeps_the_setting(ps: PicoStim) -> None:
    with pytest.raises(OutOfRange) as err:
        ps.channel(1).configure(width=2.0)
    e = err.value
    assert isinstance(e, ScpiError) and isinstance(e, PicoStimError)
    assert e.code == -222 and "Data out of range" in e.message
    assert e.command == "SOUR1:PULS:WIDT 2.0"
    assert "give a value within the range" in str(e)
    assert ps.channel(1).settings()["width"] == pytest.approx(200e-6)


def test_settings_conflict_is_typed(ps: PicoStim) -> None:
    with pytest.raises(SettingsConflict) as err:
        ps.channel(2).configure(width=30e-3)  # 2 x 30 ms + gap does not fit in 50 ms
    assert err.value.code == -221 and "pulse longer than period" in err.value.message
    assert isinstance(err.value, ExecutionError)


def test_command_errors_are_typed(ps: PicoStim, port: str) -> None:
    with pytest.raises(CommandError) as err:
        ps.scpi("SOUR1:BOGUS 1")
    assert err.value.code == -113
    assert ps.scpi("*OPC?") == "1"  # and the link is in step afterwards


def test_a_rejected_query_raises_its_error(port: str) -> None:
    with PicoStim.open(port, timeout=0.5) as conn:  # a rejected query sends no reply
        with pytest.raises(CommandError) as err:
            conn.scpi("SOUR9:PULS:WIDT?")
        assert err.value.code == -114
        assert conn.scpi("*OPC?") == "1"


def test_interlock_open_is_typed(ps: PicoStim, vb: VirtualBoard) -> None:
    ps.channel(1).enable()
    vb.set_interlock(False)
    try:
        wait_until(lambda: not ps.status().interlock_closed, what="interlock open")
        with pytest.raises(InterlockOpen) as err:
            ps.on()
        assert err.value.code in (201, 205)
        assert "close the interlock loop" in str(err.value)
        assert not ps.is_on()
    finally:
        vb.set_interlock(True)
    wait_until(lambda: ps.status().interlock_closed, what="interlock closed")
    ps.scpi("*CLS")
    ps.clear_faults()
    assert ps.faults() == []
    ps.on()
    assert ps.is_on()


def test_limit_locked_is_typed(ps: PicoStim) -> None:
    ps.scpi('SYST:LOCK "api-test"')
    try:
        with pytest.raises(LimitLocked) as err:
            ps.scpi("SYST:LIM:CURR 1mA")
        assert err.value.code == 210 and "unlock" in str(err.value)
    finally:
        ps.scpi('SYST:UNL "api-test"')
    assert ps.status().locked is False


def test_error_classes_by_code() -> None:
    assert type(error_for(-221, "x")) is SettingsConflict
    assert type(error_for(-222, "x")) is OutOfRange
    assert type(error_for(205, "x")) is InterlockOpen
    assert type(error_for(201, "x")) is InterlockOpen
    assert type(error_for(204, "x")) is FaultLatched
    assert type(error_for(210, "x")) is LimitLocked
    assert type(error_for(220, "x")) is PresetError
    assert type(error_for(-102, "x")) is CommandError
    assert type(error_for(-200, "x")) is ExecutionError
    e = error_for(-221, "Settings conflict;pulse longer than period", "SOUR1:FREQ 5kHz")
    assert isinstance(e, InstrumentError) and isinstance(e, ScpiError)
    assert str(e).startswith("-221,Settings conflict;pulse longer than period (after ")


# --------------------------------------------------------------------------- lifetime


def test_context_manager_turns_outputs_off_on_an_exception(port: str, vb: VirtualBoard) -> None:
    with pytest.raises(RuntimeError, match="experiment failed"):
        with PicoStim.open(port, timeout=5) as conn:
            conn.reset()
            conn.channel(1).configure(frequency=1000, width=100e-6)
            conn.channel(1).enable()
            conn.on()
            assert len(vb.capture(0.01).pulses("ch1_a")) >= 9
            raise RuntimeError("experiment failed")
    with PicoStim.open(port, timeout=5) as conn:
        assert not conn.is_on()
        assert conn.channel(1).is_enabled()  # only the master switch went off
    wf = capture_until(vb, 0.01, lambda wf: wf.edges("ch1_a") == [])
    assert wf.edges("ch1_a") == [] and wf.initial_level("ch1_a") == 0


def test_context_manager_turns_outputs_off_on_a_normal_exit(port: str) -> None:
    with PicoStim.open(port, timeout=5) as conn:
        conn.reset()
        conn.channel(1).enable()
        conn.on()
    with PicoStim.open(port, timeout=5) as conn:
        assert not conn.is_on()


def test_open_forms(port: str, vb: VirtualBoard) -> None:
    with PicoStim.open(vb) as conn:
        assert conn.idn.board_id == vb.uid and conn.board is vb
    assert vb.info()  # a board passed in is not stopped by close()
    with PicoStim.open("id:" + vb.uid.upper()) as conn:
        assert conn.port == vb.port
        assert conn.board is not None and conn.board.uid == vb.uid  # attached by its port
    link = serial.serial_for_url(port, baudrate=115200, timeout=5)
    with PicoStim.open(link) as conn:
        assert conn.idn.board_id == vb.uid
    assert PicoStimFromPackage is PicoStim


def test_open_sim_runs_a_private_board(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICOSTIM_RUN_DIR", str(tmp_path))
    with PicoStim.open("sim") as conn:
        assert conn.board is not None
        port = conn.port
        assert registry.lookup(port) is not None
        with pytest.raises(PresetError) as err:
            conn.recall(5)  # a fresh board has no presets
        assert err.value.code == 220
        conn.channel(1).configure(frequency=2000, width=50e-6)
        conn.channel(1).enable()
        conn.on()
        assert widths(conn.board.capture(0.005)) == {50 * US}
    wait_until(lambda: registry.lookup(port) is None, what="the private board to stop")


def test_save_and_recall(ps: PicoStim) -> None:
    ps.channel(1).configure(width=123e-6, frequency=400)
    ps.save(7)
    ps.reset()
    assert ps.channel(1).settings()["width"] == pytest.approx(200e-6)
    ps.recall(7)
    s = ps.channel(1).settings()
    assert s["width"] == pytest.approx(123e-6) and s["frequency"] == pytest.approx(400)


def test_bus_trigger_starts_a_train(ps: PicoStim, vb: VirtualBoard) -> None:
    ps.scpi("TRIG:SOUR BUS")
    ch = ps.channel(1)
    ch.configure(frequency=1000, width=100e-6, train=5e-3)
    ch.enable()
    ps.on()
    assert vb.capture(0.01).edges("ch1_a") == []  # armed, waiting for *TRG
    cap = vb.start_capture(0.02)
    ps.trigger()
    wf = cap.result()
    assert len(wf.pulses("ch1_a")) == 5 and widths(wf) == {100 * US}
    assert periods(wf) == {1000 * US}


def test_channel_numbers_are_checked(ps: PicoStim) -> None:
    with pytest.raises(ValueError):
        ps.channel(5)
    assert [c.number for c in ps.channels] == [1, 2, 3, 4]


class ScriptedLink:
    """A serial-like object whose board answers from a script (command -> reply lines)."""

    def __init__(self, script: dict[str, list[list[bytes]]]) -> None:
        self.port = "scripted"
        self.script = {k: list(v) for k, v in script.items()}
        self.pending: list[bytes] = []

    def write(self, data: bytes) -> int:
        command = data.decode().strip()
        if not command:
            return len(data)  # an empty line (the client's on connect): the board ignores it
        answers = self.script.get(command) or [[b'0,"No error"\n']]
        self.pending += answers.pop(0) if len(answers) > 1 else answers[0]
        return len(data)

    def readline(self) -> bytes:
        return self.pending.pop(0) if self.pending else b""  # b"": the read timed out

    def reset_input_buffer(self) -> None:
        self.pending.clear()

    def close(self) -> None:
        pass


def test_a_late_reply_does_not_put_the_link_out_of_step() -> None:
    link = ScriptedLink(
        {
            "*CLS": [[]],
            "*IDN?": [[b"PicoStim,PS-4,0123456789abcdef,0.1.0\n"]],
            # The reply to the query comes only after the read gave up, with an error queued.
            "SOUR1:PULS:WIDT?": [[], [b"2.000000E-04\n"]],
            "SYST:ERR?": [
                [b"2.000000E-04\n", b'-350,"Queue overflow"\n'],
                [b'0,"No error"\n'],
            ],
        }
    )
    ps = PicoStim(ScpiClient(link))
    with pytest.raises(InstrumentError) as err:
        ps.scpi("SOUR1:PULS:WIDT?")
    assert err.value.code == -350
    assert ps.scpi("SOUR1:PULS:WIDT?") == "2.000000E-04"  # back in step
