"""Capture files open in the tools bench users have: PulseView (libsigrok) and GTKWave."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import vcdvcd

from picostim.client import ScpiClient
from picostim.sim import VirtualBoard
from picostim.sim.waveform import NS_PER_CYCLE, Waveform


@pytest.fixture
def capture(inst: ScpiClient, vb: VirtualBoard, tmp_path: Path) -> tuple[Waveform, Path]:
    inst.command("SOUR1:FREQ 1kHz;:SOUR1:CURR 0.5mA;:SOUR1:RAMP 0;:OUTP1 ON;:OUTP:GLOB ON")
    wf = vb.capture(0.02)
    path = tmp_path / "capture.vcd"
    wf.write_vcd(path)
    return wf, path


def test_vcd_holds_every_edge_at_1ns(capture: tuple[Waveform, Path]) -> None:
    wf, path = capture
    vcd = vcdvcd.VCDVCD(str(path))
    assert vcd.timescale["magnitude"] == 1 and vcd.timescale["unit"] == "ns"
    names = {ref.split(".")[-1] for ref in vcd.references_to_ids}
    assert {"ch1_a", "ch1_b", "ch4_b", "sync", "ch1_current", "ch4_current"} <= names
    tv = vcd["picostim.ch1_a"].tv
    # A capture that starts during a pulse opens with the pin high at 0: a value, not an edge.
    rises = [t for t, v in tv if v == "1" and t > 0]
    assert rises == [e.cycle * NS_PER_CYCLE for e in wf.edges("ch1_a") if e.level and e.cycle]
    assert len(rises) >= 3


@pytest.mark.skipif(
    not shutil.which("sigrok-cli"), reason="sigrok-cli (PulseView's library) not installed"
)
def test_pulseview_library_imports_it(capture: tuple[Waveform, Path]) -> None:
    _, path = capture
    out = subprocess.run(
        ["sigrok-cli", "-I", "vcd:downsample=8", "-i", str(path), "--show"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "ch1_a: logic" in out.stdout and "sync: logic" in out.stdout
    assert "Samplerate: 125000000" in out.stdout  # one sample per 8 ns cycle


@pytest.mark.skipif(not shutil.which("vcd2fst"), reason="GTKWave's vcd2fst not installed")
def test_gtkwave_converts_it(capture: tuple[Waveform, Path], tmp_path: Path) -> None:
    _, path = capture
    fst = tmp_path / "capture.fst"
    out = subprocess.run(["vcd2fst", str(path), str(fst)], capture_output=True, timeout=60)
    assert out.returncode == 0 and fst.stat().st_size > 0
