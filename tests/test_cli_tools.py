"""The board tools of the `picostim` command, run as a user runs them: a subprocess.

`python -m picostim.cli info|list|status|set|on|off|save|recall|scpi ...` against the test
board (or a private `--port sim` one); outputs, exit codes and error messages are checked, and
what the board plays is judged on a capture of its executed PIO.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from picostim.api import PicoStim
from picostim.ports import usb_boards
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

US = 125  # cycles per microsecond


def picostim(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picostim.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def capture_until(
    vb: VirtualBoard, seconds: float, ok: Callable[[Waveform], bool], timeout: float = 10.0
) -> Waveform:
    deadline = time.monotonic() + timeout
    while True:
        wf = vb.capture(seconds)
        if ok(wf) or time.monotonic() > deadline:
            return wf


@pytest.fixture
def board(port: str) -> Iterator[str]:
    """The test board's port, reset to defaults; every output off afterwards."""
    with PicoStim.open(port, timeout=5) as ps:
        ps.reset()
        ps.clear_faults()
    yield port
    with PicoStim.open(port, timeout=5) as ps:
        ps.off()


@pytest.fixture
def empty_run_dir(tmp_path: Path) -> dict[str, str]:
    """An environment where no virtual board announces itself."""
    run = tmp_path / "run"
    run.mkdir()
    return {"PICOSTIM_RUN_DIR": str(run)}


def test_info_prints_versions_and_the_board(board: str) -> None:
    r = picostim("info", "--port", board)
    assert r.returncode == 0, r.stderr
    for name in ("picostim", "python", "pyserial", "pyvisa", "mpremote"):
        assert re.search(r"^%s\s+\S" % name, r.stdout, re.M), name
    with PicoStim.open(board) as ps:
        idn = str(ps.idn)
    assert "board      %s at %s" % (idn, board) in r.stdout


def test_set_on_status_off(board: str, vb: VirtualBoard) -> None:
    r = picostim(
        "set", "1", "--port", board, "--width", "100us", "--gap", "20us", "--freq", "1kHz",
        "--current", "0.6mA", "--ramp", "0",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "ch1: width 100 us, gap 20 us, 1 kHz (period 1 ms), 600 uA, biphasic normal"
    )
    r = picostim("on", "--channel", "1", "--port", board)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ch1 enabled (global output off: `picostim on` starts it)"
    r = picostim("on", "--port", board)
    assert (r.returncode, r.stdout.strip()) == (0, "output on: ch1 playing")

    wf = capture_until(vb, 0.02, lambda wf: len(wf.pulses("ch1_a")) >= 19)
    rises = [a for a, _ in wf.pulses("ch1_a")]
    assert {f - r for r, f in wf.pulses("ch1_a")} == {100 * US}
    assert {b - a for a, b in zip(rises, rises[1:], strict=False)} == {1000 * US}

    r = picostim("status", "--port", board)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^output\s+ON$", out, re.M) and re.search(r"^interlock\s+closed", out, re.M)
    assert re.search(r"^faults\s+none$", out, re.M)
    assert re.search(r"^\s+ch1\s+ch2\s+ch3\s+ch4$", out, re.M)
    assert re.search(r"^enabled\s+on\s+off\s+off\s+off$", out, re.M)
    assert re.search(r"^width\s+100 us\s+200 us\s+200 us\s+200 us$", out, re.M)
    assert re.search(r"^frequency\s+1 kHz\s+20 Hz", out, re.M)
    assert re.search(r"^current\s+600 uA\s+0 A", out, re.M)

    r = picostim("off", "--port", board)
    assert (r.returncode, r.stdout.strip()) == (0, "output off")
    with PicoStim.open(board) as ps:
        assert not ps.is_on() and ps.channel(1).is_enabled()
    r = picostim("off", "--channel", "1", "--port", board)
    assert (r.returncode, r.stdout.strip()) == (0, "ch1 disabled")


def test_set_orders_the_settings(board: str) -> None:
    # From 20 Hz / 200 us: the frequency alone would not fit the pulse, the width goes first.
    r = picostim("set", "2", "--port", board, "--freq", "5kHz", "--width", "50us")
    assert r.returncode == 0, r.stderr
    assert "width 50 us" in r.stdout and "5 kHz" in r.stdout
    r = picostim("set", "2", "--port", board, "--width", "200us", "--period", "50ms")
    assert r.returncode == 0, r.stderr
    assert "width 200 us" in r.stdout and "20 Hz (period 50 ms)" in r.stdout


def test_rejected_setting_is_reported_with_its_code(board: str) -> None:
    r = picostim("set", "1", "--port", board, "--width", "2s")
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: the instrument reported error -222,Data out of range")
    assert "SOUR1:PULS:WIDT 2s" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
    r = picostim("set", "1", "--port", board, "--width", "30ms")
    assert r.returncode == 1 and "-221,Settings conflict" in r.stderr


def test_set_needs_something_to_set(board: str) -> None:
    r = picostim("set", "1", "--port", board)
    assert r.returncode == 1 and "picostim: nothing to set: give at least one of" in r.stderr
    r = picostim("set", "1", "--port", board, "--freq", "20", "--period", "50ms")
    assert r.returncode == 1 and "not both" in r.stderr


def test_missing_port_says_what_to_do() -> None:
    r = picostim("status", "--port", "/nonexistent/ttyACM7")
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: no port /nonexistent/ttyACM7: is the board plugged in")
    assert "Traceback" not in r.stderr
    r = picostim("--debug", "status", "--port", "/nonexistent/ttyACM7")
    assert r.returncode != 0 and "Traceback" in r.stderr and "PicoStimError" in r.stderr
    r = picostim("scpi", "--port", "/nonexistent/ttyACM7", "*IDN?")  # an existing command too
    assert r.returncode == 1 and r.stderr.startswith("picostim: no port /nonexistent/ttyACM7")


def test_no_board_found(empty_run_dir: dict[str, str]) -> None:
    if usb_boards():
        pytest.skip("a Pico is plugged in: auto would find it")
    r = picostim("on", env=empty_run_dir)
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: no PicoStim found: is it plugged in")
    assert "dialout group" in r.stderr
    r = picostim("list", env=empty_run_dir)
    assert r.returncode == 0 and r.stdout.startswith("no boards found")


def test_unknown_id_lists_what_was_found(board: str, empty_run_dir: dict[str, str]) -> None:
    r = picostim("status", "--port", "id:0123456789abcdef", env=empty_run_dir)
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: no board with id 0123456789abcdef (")
    assert "picostim list" in r.stderr


def test_existing_commands_take_the_new_port_forms(board: str, vb: VirtualBoard) -> None:
    r = picostim("scpi", "--port", "id:" + vb.uid, "*IDN?")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(",")[2] == vb.uid
    r = picostim("capture", "--port", "id:" + vb.uid, "--duration", "0.001")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^ch1_a\s+\d+ edges$", r.stdout, re.M)


def test_port_sim_runs_a_private_board(empty_run_dir: dict[str, str]) -> None:
    run = Path(empty_run_dir["PICOSTIM_RUN_DIR"])
    r = picostim("status", "--port", "sim", env=empty_run_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PicoStim PS-4  id ")
    assert re.search(r"^enabled\s+off\s+off\s+off\s+off$", r.stdout, re.M)
    r = picostim("set", "3", "--port", "sim", "--freq", "5kHz", "--width", "50us",
                 env=empty_run_dir)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ch3: width 50 us, gap 50 us, 5 kHz")
    r = picostim("scpi", "--port", "sim", "*IDN?", "SYST:ERR?", env=empty_run_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PicoStim,PS-4,") and r.stdout.endswith('0,"No error"\n')
    assert list(run.glob("*.json")) == []  # each board stopped with its command


def test_save_and_recall(board: str) -> None:
    assert picostim("set", "1", "--port", board, "--width", "150us").returncode == 0
    r = picostim("save", "4", "--port", board)
    assert (r.returncode, r.stdout.strip()) == (0, "saved preset 4")
    assert picostim("set", "1", "--port", board, "--width", "90us").returncode == 0
    r = picostim("recall", "4", "--port", board)
    assert (r.returncode, r.stdout.strip()) == (0, "recalled preset 4 (outputs off)")
    with PicoStim.open(board) as ps:
        assert ps.channel(1).settings()["cycles"][0] == 150 * US
    r = picostim("recall", "12", "--port", board)
    assert r.returncode == 1 and "-222" in r.stderr
