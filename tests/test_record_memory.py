"""Record memory: the leads' DMA rings come from one pool taken at boot, so a start never
fails for want of heap. What does not fit is refused with -225 before anything changes.

A 1 h period needs a 1024-word record (839 rest words of at most 2**29 cycles, padded to a
power of two); the pool holds 2048 words for all four leads.
"""

from __future__ import annotations

from picostim.client import ScpiClient
from picostim.sim import VirtualBoard

US = 125


def _long(inst: ScpiClient, *leads: int) -> None:
    for ch in leads:
        inst.command("SOUR%d:PULS:PER 3600;:OUTP%d ON" % (ch, ch))


def test_two_one_hour_leads_fit_and_run(inst: ScpiClient) -> None:
    _long(inst, 1, 2)
    inst.command("OUTP:GLOB ON")
    assert inst.query("OUTP:GLOB?") == "1"


def test_a_third_one_hour_lead_is_225_and_output_stays_off(inst: ScpiClient) -> None:
    _long(inst, 1, 2, 3)
    inst.write("OUTP:GLOB ON")
    errs = inst.errors()
    assert [c for c, _ in errs] == [-225]
    assert "record memory" in errs[0][1]
    assert inst.query("OUTP:GLOB?") == "0"


def test_enabling_a_lead_that_does_not_fit_is_refused(inst: ScpiClient) -> None:
    _long(inst, 1, 2)
    inst.command("SOUR3:PULS:PER 3600")
    inst.command("OUTP:GLOB ON")
    inst.write("OUTP3 ON")
    assert [c for c, _ in inst.errors()] == [-225]
    assert inst.query("OUTP3?") == "0"
    assert inst.query("OUTP:GLOB?") == "1"


def test_growing_a_running_lead_past_the_pool_changes_nothing(
    vb: VirtualBoard, inst: ScpiClient
) -> None:
    _long(inst, 1)
    inst.command("SOUR2:PULS:PER 1800;:OUTP2 ON")  # 512 words
    inst.command("SOUR3:FREQ 1kHz;:OUTP3 ON")
    inst.command("OUTP:GLOB ON")
    inst.write("SOUR3:PULS:PER 3600")
    assert [c for c, _ in inst.errors()] == [-225]
    assert inst.query("SOUR3:PULS:CYCL?") == "25000,6250,125000"
    wf = vb.capture(0.01)
    starts = [r for r, _ in wf.pulses("ch3_a")]
    assert len(starts) >= 5
    assert {b - a for a, b in zip(starts, starts[1:], strict=False)} == {1000 * US}


def test_leads_turned_off_give_their_rings_back(inst: ScpiClient) -> None:
    _long(inst, 1, 2)
    inst.command("OUTP:GLOB ON")
    inst.command("OUTP:GLOB OFF;:OUTP1 OFF;:OUTP2 OFF")
    _long(inst, 3, 4)
    inst.command("OUTP:GLOB ON")  # the rings of leads 1 and 2 went back to the pool
    assert inst.query("OUTP:GLOB?") == "1"
