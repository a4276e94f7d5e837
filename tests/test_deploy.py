"""`picostim flash`: compile, copy with mpremote, verify by sha256, reset, check *IDN?.

The deploy runs against a virtual board booting from its LittleFS flash image, with a firmware
whose version is changed in a copy of board/; after a power cycle, and in a new board started
from the same image file, the board reports the new version.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from picostim import deploy
from picostim.client import PicoStimError, ScpiClient
from picostim.deploy import Target, mpremote, resolve_port, wait_for_idn
from picostim.sim import VirtualBoard

REPO_BOARD = Path(__file__).resolve().parents[1] / "board"


def board_copy(tmp_path: Path, version: str) -> Path:
    """board/ copied to tmp_path, with `version` as its VERSION."""
    dest = tmp_path / "board"
    shutil.copytree(REPO_BOARD, dest, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    init = dest / "stim" / "__init__.py"
    text, n = re.subn(r'(?m)^VERSION = ".*"$', 'VERSION = "%s"' % version, init.read_text())
    assert n == 1
    init.write_text(text)
    return dest


def picostim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picostim.cli", *args], capture_output=True, text=True, timeout=180
    )


def idn_version(port: str) -> str:
    return wait_for_idn(port).split(",")[3]


def test_flash_deploys_and_the_image_keeps_it(tmp_path: Path) -> None:
    firmware = board_copy(tmp_path, "9.9.1")
    image = tmp_path / "flash.img"
    with VirtualBoard(flash=image) as vb:
        assert idn_version(vb.port) != "9.9.1"
        # A stale source module on the board would shadow the new .mpy: deploy removes it.
        stale = tmp_path / "__init__.py"
        stale.write_text('VERSION = "0.0.0-stale"\nMODEL = "PS-4"\n')
        mpremote(vb.port, "fs", "cp", str(stale), ":stim/__init__.py")

        r = picostim("flash", "--port", vb.port, "--board-dir", str(firmware))
        assert r.returncode == 0, r.stderr
        assert "sha256 of all" in r.stdout and "removed 1 stale" in r.stdout
        assert r.stdout.rstrip().endswith(",9.9.1")
        assert idn_version(vb.port) == "9.9.1"

        vb.power_cycle()
        assert idn_version(vb.port) == "9.9.1"
        listing = mpremote(vb.port, "fs", "ls", ":stim")
        assert "__init__.mpy" in listing and "__init__.py" not in listing
        assert "main.py" in mpremote(vb.port, "fs", "ls")

        # Deploying the same build again writes nothing and still verifies every file.
        r = picostim("flash", "--port", vb.port, "--board-dir", str(firmware))
        assert r.returncode == 0, r.stderr
        assert "copied 0 files" in r.stdout
        with ScpiClient(vb.port, timeout=5) as inst:
            assert inst.query("*OPC?") == "1"

    # The image file is the board's flash: a new board started from it runs that firmware.
    with VirtualBoard(flash=image) as vb:
        assert idn_version(vb.port) == "9.9.1"


def test_a_new_image_holds_the_board_dir_firmware(tmp_path: Path) -> None:
    firmware = board_copy(tmp_path, "9.9.2")
    with VirtualBoard(board_dir=firmware, flash=tmp_path / "flash.img") as vb:
        assert idn_version(vb.port) == "9.9.2"


def test_sim_keeps_its_flash_image_across_runs(tmp_path: Path) -> None:
    image, link, note = tmp_path / "flash.img", tmp_path / "ps", tmp_path / "note.txt"
    note.write_text("kept in flash\n")
    for run in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "picostim.cli", "sim", "--flash", str(image)]
            + ["--link", str(link), "--no-panel"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == str(link)
            if run == 0:
                mpremote(str(link), "fs", "cp", str(note), ":note.txt")
            else:
                assert mpremote(str(link), "fs", "cat", ":note.txt") == "kept in flash\n"
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
    assert image.stat().st_size == 1408 * 1024


def test_flash_reports_a_bad_port_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-port"
    r = picostim("flash", "--port", str(missing))
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: no port %s: is the board plugged in" % missing)
    assert "Traceback" not in r.stderr
    # A port another program holds: mpremote's complaint, with what to do.
    with VirtualBoard(flash=tmp_path / "flash.img") as vb, ScpiClient(vb.port):
        r = picostim("flash", "--port", vb.port)
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: mpremote failed on %s: failed to access" % vb.port)
    assert "is another program" in r.stderr


def test_a_copy_that_does_not_match_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    firmware = board_copy(tmp_path, "9.9.3")
    with VirtualBoard(flash=tmp_path / "flash.img") as vb:
        monkeypatch.setattr(deploy, "sha256", lambda path: "0" * 64)
        with pytest.raises(PicoStimError, match="does not match the build"):
            deploy.deploy(vb.port, board_dir=firmware, say=lambda s: None)


def test_mpy_target_of_a_pico() -> None:
    pico = Target.from_mpy(6 | 3 << 8 | 4 << 10)  # what an RP2040 build reports
    assert (pico.version, pico.sub_version, pico.arch) == (6, 3, "armv6m")
    assert Target.from_mpy(2822).arch == "x64"  # the unix port of the virtual board


def test_port_selection_like_mpremote(monkeypatch: pytest.MonkeyPatch) -> None:
    from serial.tools import list_ports

    ports = [
        SimpleNamespace(device="/dev/ttyUSB0", vid=0x10C4, serial_number="cp2102"),
        SimpleNamespace(device="/dev/ttyACM1", vid=0x2E8A, serial_number="e66038b7138f5e2d"),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert resolve_port("auto") == "/dev/ttyACM1"
    assert resolve_port("id:cp2102") == "/dev/ttyUSB0"
    assert resolve_port("socket://localhost:7777") == "socket://localhost:7777"
    with pytest.raises(PicoStimError, match="no USB serial device with serial number x"):
        resolve_port("id:x")
    monkeypatch.setattr(list_ports, "comports", lambda: ports[:1])
    with pytest.raises(PicoStimError, match="no Raspberry Pi Pico found"):
        resolve_port("auto")
