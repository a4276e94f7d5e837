"""The front panel (`picostim sim`, `picostim panel`), driven headless with textual's pilot."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, RichLog

from picostim import cli
from picostim.client import PicoStimError, ScpiClient
from picostim.panel import (
    SYS_HZ,
    Chunk,
    PanelApp,
    Trace,
    fmt_time,
    has_query,
    high_columns,
    parse_marked,
    parse_status,
    split_units,
)
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

SIZE = (80, 24)


@pytest.fixture(scope="module")
def board() -> Iterator[VirtualBoard]:
    """A private virtual board: these tests switch its outputs and interlock."""
    with VirtualBoard() as vb:
        yield vb


@pytest.fixture
def fresh(board: VirtualBoard) -> VirtualBoard:
    """The board at its defaults: interlock closed, no fault, outputs off, no queued error."""
    board.set_interlock(True)
    deadline = time.monotonic() + 10
    while True:
        scpi(board.port, "*RST;*CLS;:SYST:FAUL:CLE")
        if scpi(board.port, "SYST:FAUL?") == '0,"No fault"':
            return board
        assert time.monotonic() < deadline, "the board keeps a fault"
        time.sleep(0.1)  # the firmware has not seen the interlock close yet


def scpi(port: str, line: str) -> str | None:
    """Send one line (a reply is read if it holds a query), waiting while the panel has the port."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with ScpiClient(port, timeout=3) as c:
                c.write(line)
                return c.read_line() if has_query(line) else None
        except PicoStimError as exc:
            if "cannot open" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def ask(port: str, line: str) -> str | None:
    return await asyncio.to_thread(scpi, port, line)


async def until(pilot: Pilot[Any], cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            app = pilot.app
            assert isinstance(app, PanelApp)
            raise AssertionError(
                "timed out waiting for the panel; status %s; log:\n%s"
                % (app.status, log_text(app))
            )
        await pilot.pause(0.05)


async def type_command(pilot: Pilot[Any], command: str) -> None:
    if pilot.app.focused is None:
        await pilot.press("slash")  # to the console line (it keeps the focus after Enter)
    await pilot.press(*command, "enter")


def log_text(app: PanelApp) -> str:
    return "\n".join(line.text for line in app.query_one(RichLog).lines)


def screen_text(app: PanelApp) -> str:
    """The screen as text, one line per row (from the SVG screenshot's text runs)."""
    svg = app.export_screenshot()
    rows: dict[float, list[str]] = {}
    for y, run in re.findall(r'<text [^>]*\by="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append(html.unescape(run).replace("\xa0", " "))
    return "\n".join("".join(rows[y]) for y in sorted(rows))


def run(app: PanelApp, body: Callable[[PanelApp, Pilot[Any]], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.status is not None)
            await body(app, pilot)

    asyncio.run(main())


# ------------------------------------------------------------------------- on the virtual board


def test_renders_at_80x24_with_the_port_and_actions(fresh: VirtualBoard) -> None:
    async def body(app: PanelApp, pilot: Pilot[Any]) -> None:
        assert app.sim and app.size == SIZE
        text = screen_text(app)
        assert fresh.port in text
        assert "at the same time" in text
        for label in ("b on/off", "B hold", "i interlock", "t trigger", "p power-cycle", "q quit"):
            assert label in text, label
        for button in app.query(Button):  # every action is on screen, in one row at the bottom
            assert button.display and button.region.bottom <= SIZE[1]
            assert button.region.right <= SIZE[0], button.id
        assert "OUTPUT" in text and "interlock closed" in text and "faults none" in text
        assert "session no limit" in text and "lock off" in text
        for n in range(1, 5):
            assert "L%d" % n in text
        assert "10 ms/col" in text
        await until(pilot, lambda: app.trace.captures >= 2)

    run(PanelApp(fresh.port), body)


def test_console_turns_lead_1_on_and_the_trace_shows_its_pulses(fresh: VirtualBoard) -> None:
    async def body(app: PanelApp, pilot: Pilot[Any]) -> None:
        await type_command(pilot, "OUTP1 ON")
        await type_command(pilot, "OUTP:GLOB ON")
        await until(pilot, lambda: app.status is not None and app.status.global_on)
        assert app.status is not None and app.status.enabled == [True, False, False, False]
        assert await ask(fresh.port, "OUTP:GLOB?") == "1"
        await until(pilot, lambda: app.trace.high_columns(1) >= 3)
        assert app.trace.high_columns(2) == 0
        assert app.trace.width[0] == 25_000  # 200 us, the default, from the executed PIO
        assert app.trace.period[0] == 6_250_000  # 20 Hz
        rows = app.render_outputs(77).plain.splitlines()
        assert "▀" in rows[1] and "200 µs" in rows[1] and "20 Hz" in rows[1]
        assert "▀" not in rows[2] and "▄" not in rows[2]
        log = log_text(app)
        assert "> OUTP1 ON  → ok" in log and "> OUTP:GLOB ON  → ok" in log
        await type_command(pilot, "OUTP2?")  # replies that look like *OPC?'s
        await type_command(pilot, "*OPC?")
        await until(pilot, lambda: "> *OPC?  → 1" in log_text(app))
        assert "> OUTP2?  → 0" in log_text(app)

    run(PanelApp(fresh.port), body)


def test_button_key_toggles_the_output(fresh: VirtualBoard) -> None:
    scpi(fresh.port, "OUTP1 ON")

    async def body(app: PanelApp, pilot: Pilot[Any]) -> None:
        assert app.focused is None
        await pilot.press("b")
        await until(pilot, lambda: app.status is not None and app.status.global_on)
        assert await ask(fresh.port, "OUTP:GLOB?") == "1"
        await until(pilot, lambda: "button" not in app.busy)
        await pilot.click("#button")  # the same with the mouse
        await until(pilot, lambda: app.status is not None and not app.status.global_on)
        assert await ask(fresh.port, "OUTP:GLOB?") == "0"

    run(PanelApp(fresh.port), body)


def test_interlock_key_flips_it_and_the_long_press_clears_the_fault(fresh: VirtualBoard) -> None:
    async def body(app: PanelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("i")
        await until(pilot, lambda: app.status is not None and not app.status.interlock_closed)
        assert await ask(fresh.port, "SYST:INT?") == "OPEN"
        await until(pilot, lambda: app.status is not None and app.status.faults)
        assert "FAULT 201" in app.render_hint().plain
        assert "error 201" in log_text(app)  # read from the queue after the action
        await pilot.press("i")
        await until(pilot, lambda: app.status is not None and app.status.interlock_closed)
        assert await ask(fresh.port, "SYST:INT?") == "CLOS"
        await pilot.press("B")
        await until(pilot, lambda: app.status is not None and not app.status.faults)
        assert await ask(fresh.port, "SYST:FAUL?") == '0,"No fault"'

    run(PanelApp(fresh.port), body)


def test_errors_of_a_bad_command_are_shown(fresh: VirtualBoard) -> None:
    async def body(app: PanelApp, pilot: Pilot[Any]) -> None:
        await type_command(pilot, "SOUR1:PULS:WIDT 5")
        await type_command(pilot, "FOO:BAR?")
        await until(pilot, lambda: "error -113" in log_text(app))
        log = log_text(app)
        assert "error -222" in log and "Undefined header;FOO:BAR?" in log
        assert app.focused is not None  # still typing: the keys type text
        await pilot.press("escape", "i")
        await until(pilot, lambda: app.status is not None and not app.status.interlock_closed)
        assert await ask(fresh.port, "SYST:ERR?") == '0,"No error"'

    run(PanelApp(fresh.port), body)


def test_as_a_real_board_the_bench_is_hidden_and_programmed_values_shown(
    fresh: VirtualBoard,
) -> None:
    scpi(fresh.port, "OUTP2 ON;:SOUR2:FREQ 100")

    async def body(app: PanelApp, pilot: Pilot[Any]) -> None:
        assert not app.sim
        text = screen_text(app)
        assert fresh.port in text and "q quit" in text and "i interlock" not in text
        assert "executed PIO" not in text and "No live trace" in text
        rows = app.render_outputs(77).plain.splitlines()
        assert "set" in rows[2] and "A 200 µs, gap 50 µs, B 200 µs, 100 Hz" in rows[2]
        await pilot.press("b")  # no bench here: nothing happens
        await pilot.pause(0.3)
        assert not app.busy and await ask(fresh.port, "OUTP:GLOB?") == "0"
        await type_command(pilot, "OUTP:GLOB ON")
        # The board measures lead 2 (or, without MEASure, the panel keeps to the settings).
        await until(pilot, lambda: app.measure is False or app.measured[1] is not None)
        rows = app.render_outputs(77).plain.splitlines()
        if app.measure:
            assert "measured A 200 µs, every 10.0 ms (100 Hz)" in rows[2], rows[2]
        else:
            assert "A 200 µs, gap 50 µs, B 200 µs, 100 Hz" in rows[2]
        assert await ask(fresh.port, "SYST:ERR?") == '0,"No error"'  # nothing left behind

    run(PanelApp(fresh.port, bench=False), body)


# ------------------------------------------------------------------------- pieces


def test_status_replies_are_parsed() -> None:
    st = parse_status(
        '1;1;0;0;1;OPEN;0;12.5;IMM;201,"Interlock opened; outputs stopped",205,"x"',
        "0.001;0;0;0.0005;" + "25000,6250,6250000;1,2,3;1,2,3;1,2,3;" + "BIPH;MON;BIPH;BIPH",
    )
    assert st.global_on and st.enabled == [True, False, False, True]
    assert not st.interlock_closed and not st.locked and st.session_left == 12.5
    assert st.faults == [(201, "Interlock opened; outputs stopped"), (205, "x")]
    assert st.currents[0] == pytest.approx(0.001) and st.cycles[0] == (25000, 6250, 6250000)
    assert st.biphasic == [True, False, True, True]
    with pytest.raises(ValueError):
        parse_status("1;0", "")
    assert split_units('a;"b;c";d') == ["a", '"b;c"', "d"]
    assert has_query("OUTP1 ON;:OUTP1?") and not has_query('SYST:LOCK "a?b"')


def test_measurements_keep_their_place_when_one_is_missing() -> None:
    m = "1999.0"  # the marker's reply (SYST:VERS?)
    assert parse_marked(";".join([m, "2.0E-04", m, "5.0E-02"]), 2) == [0.0002, 0.05]
    assert parse_marked(";".join([m, m, "5.0E-02"]), 2) == [None, 0.05]
    assert parse_marked(";".join([m, "2.0E-04", m]), 2) == [0.0002, None]
    assert parse_marked(m, 2) == [None, None]  # the line was abandoned (-113)
    assert parse_marked(";".join([m, "9.9E+37", m, "x"]), 2) == [None, None]
    with pytest.raises(ValueError):
        parse_marked("0;1", 2)


def test_captures_become_strip_columns() -> None:
    cpc = SYS_HZ // 100  # 10 ms columns, 100 ms window
    edges = [
        (5_000_000, 2, 1),  # ch1_a high 40.0..40.2 ms
        (5_025_000, 2, 0),
        (5_031_250, 3, 1),  # ch1_b
        (5_056_250, 3, 0),
        (11_250_000, 2, 1),  # ch1_a again at 90 ms
        (11_275_000, 2, 0),
    ]
    wf = Waveform(0, 12_500_000, {}, edges)
    assert high_columns(wf, "ch1_a", cpc) == [i in (4, 9) for i in range(10)]
    chunk = Chunk.from_waveform(wf, cpc)
    assert chunk.leads[0] == [0, 0, 0, 0, 3, 0, 0, 0, 0, 1]
    assert chunk.width[0] == 25_000 and chunk.period[0] == 6_250_000
    trace = Trace()
    trace.add(chunk)
    assert trace.high_columns(1) == 2 and trace.high_columns(2) == 0
    assert trace.rescale(-1) and trace.high_columns(1) == 0
    assert fmt_time(200e-6) == "200 µs" and fmt_time(0.05) == "50.0 ms"


def test_sim_command_opens_the_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(port: str, **kw: Any) -> None:
        seen["port"] = port
        seen.update(kw)
        with ScpiClient(port) as c:  # the board is up while the panel runs
            seen["idn"] = c.query("*IDN?")

    monkeypatch.setattr("picostim.panel.run_panel", fake)
    assert cli.main(["sim"]) == 0
    assert seen["idn"].startswith("PicoStim,") and seen["shown_port"] == seen["port"]
    args = cli.build_parser().parse_args(["panel", "--port", "/dev/ttyACM0"])
    assert args.func is cli.cmd_panel and not args.no_bench
