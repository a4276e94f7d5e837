"""mpremote against the virtual board's serial port, as against a Pico running MicroPython.

The board boots from its LittleFS flash image; mpremote's raw REPL, raw-paste, soft reset,
file transfers and reset all go through the same port the SCPI clients use. Ctrl-C and soft
resets must leave every output at rest, and the instrument must answer again after a reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from support import read_until, wait_until

from picostim.client import ScpiClient
from picostim.deploy import mpremote, wait_for_idn
from picostim.pinmap import OUTPUTS, PINS
from picostim.sim import VirtualBoard, VirtualBoardError

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    with VirtualBoard(flash=tmp_path_factory.mktemp("mpremote") / "flash.img") as vb:
        yield vb


def start_pulses(port: str, vb: VirtualBoard) -> None:
    """Lead 1 pulsing at 1 kHz, checked on a capture."""
    wait_for_idn(port)
    with ScpiClient(port, timeout=5) as inst:
        for cmd in ("*RST;*CLS", "SOUR1:FREQ 1kHz", "OUTP1 ON", "OUTP:GLOB ON"):
            inst.command(cmd)
    wf = vb.capture(0.01)
    assert wf.edges("ch1_a"), "lead 1 should pulse before the test goes on"


# What "at rest" covers: both pins of every lead, the sync output and the ARM lines.
REST_PINS = (*PINS["LEAD_A"], *PINS["LEAD_B"], PINS["SYNC"], *PINS["ARM"])


def assert_at_rest(vb: VirtualBoard) -> None:
    wf = vb.capture(0.01)
    moving = {n: wf.edges(n) for n, pin in OUTPUTS.items() if pin in REST_PINS and wf.edges(n)}
    assert moving == {}
    levels = vb.levels()
    driven = [p for p in REST_PINS if levels[p]]
    assert driven == [], "outputs not at rest: GPIO %s high" % driven


def test_exec_and_eval(board: VirtualBoard) -> None:
    assert mpremote(board.port, "exec", "print(6 * 7)").strip() == "42"
    assert mpremote(board.port, "eval", "1 + 2").strip() == "3"
    # Two commands, one connection: one soft reset, then both over raw-paste.
    out = mpremote(board.port, "exec", "x = 5", "+", "eval", "x * 2")
    assert out.strip() == "10"


def test_the_board_runs_from_its_flash_image(board: VirtualBoard) -> None:
    listing = mpremote(board.port, "fs", "ls")
    assert " main.py" in listing and " stim/" in listing
    assert " app.mpy" in mpremote(board.port, "fs", "ls", ":stim")
    out = mpremote(
        board.port,
        "exec",
        "import os, sys, vfs\nprint(os.getcwd(), sys.path[0] == '', type(vfs.mount()[0][0]))",
    )
    assert out.split() == ["/", "True", "<class", "'VfsLfs2'>"]


def test_fs_cp_cat_and_run(board: VirtualBoard, tmp_path: Path) -> None:
    text = "".join("line %d of a file copied to the board\n" % i for i in range(300))
    local = tmp_path / "notes.txt"
    local.write_text(text)
    mpremote(board.port, "fs", "cp", str(local), ":notes.txt")
    assert mpremote(board.port, "fs", "cat", ":notes.txt") == text
    size = [ln.split() for ln in mpremote(board.port, "fs", "ls").splitlines()]
    assert [str(len(text)), "notes.txt"] in size
    back = tmp_path / "back.txt"
    mpremote(board.port, "fs", "cp", ":notes.txt", str(back))
    assert back.read_text() == text
    script = tmp_path / "script.py"
    script.write_text("with open('notes.txt') as f:\n    print(len(f.read()))\n")
    assert mpremote(board.port, "run", str(script)).strip() == str(len(text))
    # The file is in the flash image: it survives a power cycle.
    board.power_cycle()
    assert mpremote(board.port, "fs", "cat", ":notes.txt") == text
    mpremote(board.port, "fs", "rm", ":notes.txt")


def test_raw_repl_soft_reset_is_answered_like_rp2(board: VirtualBoard) -> None:
    with serial.Serial(board.port, timeout=0.1) as link:
        link.write(b"\r\x03")
        link.write(b"\r\x01")
        read_until(link, RAW_BANNER)
        link.write(b"\x04")
        assert read_until(link, RAW_BANNER) == b"OK\r\nMPY: soft reboot\r\n" + RAW_BANNER
        # Raw-paste: R\x01, a 128-byte window, the first flow-control byte.
        link.write(b"\x05A\x01")
        assert read_until(link, b"\x01", 5) == b"R\x01"
        assert link.read(3) == b"\x80\x00\x01"
        link.write(b"import sys\nprint('stim.app' in sys.modules)\x04")
        out = read_until(link, b"\x04>")
        # main.py did not run after this soft reset: the firmware was never imported.
        assert out == b"\x04False\n\x04\x04>"
        link.write(b"\r\x02")  # back to the friendly REPL
        read_until(link, b">>> ")


def test_soft_reset_command_leaves_outputs_at_rest(board: VirtualBoard) -> None:
    board.power_cycle()
    start_pulses(board.port, board)
    mpremote(board.port, "soft-reset")
    assert_at_rest(board)
    chip = board._call("chip")
    assert [sm for sm in chip["sms"] if sm["enabled"]] == []


def test_boot_py_rests_what_a_script_left_driven(board: VirtualBoard) -> None:
    """A soft reset keeps pin levels; the firmware's boot.py, run at every start, rests them."""
    lead = PINS["LEAD_A"][0]
    mpremote(
        board.port, "exec", "import machine\nmachine.Pin(%d, machine.Pin.OUT, value=1)" % lead
    )
    wait_until(lambda: board.levels()[lead] == 1, 10, "lead pin high")
    mpremote(board.port, "soft-reset")
    wait_until(lambda: board.levels()[lead] == 0, 10, "lead pin low")
    assert_at_rest(board)


def test_ctrl_c_stops_main_py_with_outputs_at_rest(board: VirtualBoard) -> None:
    board.power_cycle()
    start_pulses(board.port, board)
    with serial.Serial(board.port, timeout=0.1) as link:
        link.write(b"\x03")
        out = read_until(link, b">>> ")
    assert b"KeyboardInterrupt" in out
    assert_at_rest(board)


def test_reset_runs_main_py_again(board: VirtualBoard) -> None:
    mpremote(board.port, "exec", "pass")  # in the raw REPL now: main.py is not running
    mpremote(board.port, "reset")
    assert wait_for_idn(board.port).startswith("PicoStim,")
    with ScpiClient(board.port, timeout=5) as inst:
        assert inst.query("*OPC?") == "1"
        assert inst.errors() == []


def test_power_cut_at_a_block_write(board: VirtualBoard) -> None:
    """The write armed is not done, the board restarts, the filesystem still mounts."""
    mpremote(board.port, "exec", "pass")
    before = board.flash_writes()
    cuts = board.power_cuts()
    board.cut_power_at_write(3)
    with serial.Serial(board.port, timeout=0.1) as link:
        link.write(b"\r\x03\r\x01")
        read_until(link, RAW_BANNER)
        link.write(b"f = open('big.bin', 'wb')\nfor i in range(40): f.write(bytes(1024))\n")
        link.write(b"f.close()\x04")
        wait_until(lambda: board.power_cuts() == cuts + 1, 10, "the power cut")
    assert board.flash_info()["writes_at_cut"] == before + 2  # not the third write
    assert wait_for_idn(board.port).startswith("PicoStim,")
    out = mpremote(board.port, "exec", "import os\nprint(sorted(os.listdir()))")
    assert "'main.py'" in out and "'stim'" in out
    board.cut_power_at_write(None)
    with pytest.raises(VirtualBoardError, match="1 or more"):
        board.cut_power_at_write(0)


def test_scpi_answers_after_all_that(board: VirtualBoard) -> None:
    board.power_cycle()
    with ScpiClient(board.port, timeout=5) as inst:
        assert inst.query("*IDN?").startswith("PicoStim,PS-4,")
        assert inst.query("*OPC?") == "1"
