"""A lab PC with several boards: finding them, and acting on many at once.

Four virtual boards run at once, announced in a run directory of this module's own (so
boards of other sessions on the machine are neither listed nor touched). The CLI runs as a
subprocess; each board's capture must show its own state.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import wait_until

from picostim.api import PicoStim
from picostim.ports import list_boards
from picostim.sim import VirtualBoard
from picostim.sim.waveform import Waveform

US = 125  # cycles per microsecond
WIDTHS_US = (50, 100, 150, 200)  # board i plays this width, to tell the boards apart
pytestmark = pytest.mark.sim_only


def at_rest(wf: Waveform) -> bool:
    """Lead 1 low for the whole window."""
    return wf.edges("ch1_a") == [] and wf.edges("ch1_b") == [] and not wf.initial_level("ch1_a")


def picostim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picostim.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def lines_by_port(out: str, boards: list[VirtualBoard]) -> dict[str, str]:
    """Each board's result line (`<port> <id>  <result>`), by port."""
    found = {}
    for line in out.splitlines():
        port = line.split()[0]
        found[port] = line
    assert sorted(found) == sorted(b.port for b in boards), out
    return found


@pytest.fixture(scope="module")
def boards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[VirtualBoard]]:
    """Four virtual boards, started together, with ids <p>0a01, <p>0a02 (a shared prefix),
    <p>0b03 and <p>0c04 (<p>0c is unique)."""
    run = tmp_path_factory.mktemp("run")
    prefix = secrets.token_hex(6)
    uids = [prefix + s for s in ("0a01", "0a02", "0b03", "0c04")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PICOSTIM_RUN_DIR", str(run))  # the boards and every CLI run see only these
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(VirtualBoard, uid) for uid in uids]
        started = []
        try:
            for f in futures:
                started.append(f.result())
            yield started
        finally:
            for f in futures:
                if f.exception() is None:
                    f.result().close()


@pytest.fixture
def fresh(boards: list[VirtualBoard]) -> list[VirtualBoard]:
    """Every board reset, interlock closed, no fault, outputs off."""

    def reset(vb: VirtualBoard) -> None:
        vb.set_interlock(True)
        with PicoStim.open(vb, timeout=5) as ps:
            ps.reset()
            ps.clear_faults()
            assert ps.faults() == []

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(reset, boards))
    return boards


def test_list_shows_every_board(boards: list[VirtualBoard]) -> None:
    assert [(b.kind, b.serial) for b in list_boards()] == [
        ("virtual", vb.uid) for vb in sorted(boards, key=lambda vb: os.path.basename(vb.port))
    ]
    r = picostim("list", "--timeout", "5")
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["PORT", "KIND", "SERIAL/UID", "*IDN?"]
    assert len(rows) == 4
    for vb in boards:
        assert re.search(
            r"^%s\s+virtual\s+%s\s+PicoStim,PS-4,%s,\S+$" % (vb.port, vb.uid, vb.uid),
            r.stdout,
            re.M,
        ), r.stdout


def test_info_finds_the_first_board(boards: list[VirtualBoard]) -> None:
    r = picostim("info")
    assert r.returncode == 0, r.stderr
    assert "boards     4 found" in r.stdout
    first = list_boards()[0]
    assert re.search(r"^board      PicoStim,PS-4,%s,\S+ at %s$" % (first.serial, first.port),
                     r.stdout, re.M)  # fmt: skip


def test_each_board_plays_its_own_settings(fresh: list[VirtualBoard]) -> None:
    boards = fresh

    def set_width(i: int) -> subprocess.CompletedProcess[str]:
        return picostim(
            "set", "1", "--port", "id:" + boards[i].uid, "--freq", "1kHz",
            "--width", "%dus" % WIDTHS_US[i], "--gap", "0",
        )  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(set_width, range(4)))
    for i, r in enumerate(results):
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("ch1: width %d us, gap 0 s, 1 kHz" % WIDTHS_US[i])

    r = picostim("on", "--channel", "1", "--all")
    assert r.returncode == 0, r.stderr
    by_port = lines_by_port(r.stdout, boards)
    for vb in boards:
        assert re.fullmatch(r"%s\s+%s\s+ch1 enabled \(global output off.*" % (vb.port, vb.uid),
                            by_port[vb.port])  # fmt: skip

    # Global on for two boards only, chosen by id (any case).
    r = picostim("on", "--port", "id:" + boards[0].uid, "--port", "id:" + boards[2].uid.upper())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    for vb, line in zip((boards[0], boards[2]), lines, strict=True):
        assert re.fullmatch(r"%s\s+%s\s+output on: ch1 playing" % (vb.port, vb.uid), line)

    for i, vb in enumerate(boards):
        wf = vb.capture(0.01)
        if i in (0, 2):
            assert {f - r for r, f in wf.pulses("ch1_a")} == {WIDTHS_US[i] * US}
            assert len(wf.pulses("ch1_a")) >= 9
        else:
            assert wf.edges("ch1_a") == [] and wf.edges("ch1_b") == []

    r = picostim("off", "--all")
    assert r.returncode == 0, r.stderr
    assert all(line.endswith("output off") for line in r.stdout.splitlines())
    assert len(r.stdout.splitlines()) == 4
    for vb in boards:
        with PicoStim.open(vb) as ps:
            assert not ps.is_on()
        wait_until(lambda vb=vb: at_rest(vb.capture(0.005)), what="outputs at rest")


def test_one_failing_board_fails_the_command(fresh: list[VirtualBoard]) -> None:
    boards = fresh
    bad = boards[3]
    bad.set_interlock(False)
    try:
        with PicoStim.open(bad) as ps:
            wait_until(lambda: not ps.status().interlock_closed, what="interlock open")
        r = picostim("on", "--all")
        assert r.returncode == 1
        by_port = lines_by_port(r.stdout, boards)
        assert re.search(r"FAILED: the instrument reported error 20[15],", by_port[bad.port])
        for vb in boards[:3]:
            assert by_port[vb.port].endswith("output on, but no lead is enabled "
                                             "(`picostim on --channel N`)")  # fmt: skip
        assert r.stderr.startswith("picostim: 1 of 4 boards failed: %s" % bad.port)
    finally:
        bad.set_interlock(True)
    assert picostim("off", "--all").returncode == 0


def test_ids_select_boards_or_say_why_not(boards: list[VirtualBoard]) -> None:
    prefix = boards[0].uid[:-2]  # shared by boards 0 and 1
    r = picostim("status", "--port", "id:" + prefix)
    assert r.returncode == 1
    assert r.stderr.startswith("picostim: id %s is ambiguous: 2 boards match" % prefix)
    assert boards[0].uid in r.stderr and boards[1].uid in r.stderr
    assert boards[2].uid not in r.stderr

    r = picostim("status", "--port", "id:" + boards[3].uid[:-2])  # a unique prefix
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PicoStim PS-4  id %s" % boards[3].uid)

    r = picostim("status", "--port", "id:ffff" + boards[0].uid[4:])
    assert r.returncode == 1 and "no board with id" in r.stderr
    assert all(vb.uid in r.stderr for vb in boards)  # says what it found

    # The same board named twice is acted on once (and then prints as a single board does).
    r = picostim("off", "--port", "id:" + boards[1].uid, "--port", boards[1].port)
    assert (r.returncode, r.stdout) == (0, "output off\n")


def test_api_opens_each_board_by_id(boards: list[VirtualBoard]) -> None:
    for vb in boards:
        with PicoStim.open("id:" + vb.uid) as ps:
            assert ps.idn.board_id == vb.uid and ps.port == vb.port
