"""Safety latencies on the executed waveform: interlock opening and host silence -> rest.

Interlock: four leads pulse at 500 Hz, staggered by 500 us with 200 us + 50 us + 200 us
pulses, so an opening usually falls inside a pulse. The interlock input is opened at a random
moment inside a capture; the capture records the input itself, so the opening and every
output edge are on one cycle axis. Reported: cycles from the opening to the last falling edge
of any lead pin (0 when every output was already at rest), pulses started after the
opening (must be 0) and pulses cut short (must be 0: the pulse in flight completes).

Host silence: `SYST:HEAR` set, lead 1 pulsing at 1 kHz, the host sends a last `*OPC?` and
then nothing. The last line's arrival is bracketed on the capture's axis by a marker (the
trigger input, unused with `TRIG:SOUR IMM`, raised just before the line is written and lowered
after its reply is read). Reported: cycles from the marker to the last falling edge, minus
the heartbeat timeout.

    python bench/safety_latency.py [--quick]
"""

from __future__ import annotations

import random
import time
from typing import Any

from common import MS, US, Table, board, emit, log, parser, rises, stats

from picostim.pinmap import PINS  # noqa: E402

LEADS = range(1, 5)
TRIGGER = PINS["TRIGGER"]
WIDTH, GAP, PERIOD = 200 * US, 50 * US, 2 * MS


def lead_edges(wf: Any) -> list[tuple[int, str, int]]:
    out = []
    for ch in LEADS:
        for pin in "ab":
            name = "ch%d_%s" % (ch, pin)
            out += [(e.cycle, name, e.level) for e in wf.edges(name)]
    return sorted(out)


def interlock_trial(vb: Any, inst: Any, rng: random.Random) -> dict[str, Any]:
    inst.command("*RST;*CLS")
    for ch in LEADS:
        inst.command(
            "SOUR%d:PULS:WIDT 200us;GAP 50us;:SOUR%d:PULS:PER 2ms;:SOUR%d:DEL %dus;:OUTP%d ON"
            % (ch, ch, ch, 8 + 500 * (ch - 1), ch)
        )
    inst.command("OUTP:GLOB ON")
    time.sleep(0.02)
    vb.levels()
    window = 0.12
    cap = vb.start_capture(window)
    time.sleep(rng.uniform(0.02, 0.06))
    vb.set_interlock(False)
    wf = cap.result()
    vb.set_interlock(True)
    err = inst.query("SYST:ERR:ALL?")
    inst.write("*RST;:SYST:FAUL:CLE;*CLS")
    inst.query("*OPC?")
    opens = [e.cycle for e in wf.edges("interlock") if not e.level]
    t_open = opens[0]
    edges = lead_edges(wf)
    falls = [c for c, _n, level in edges if not level]
    # Pulse starts = phase-1 (pin A) rises; a phase 2 after the opening belongs to the
    # pulse in flight.
    after = [c for c, n, level in edges if level and n.endswith("_a") and c >= t_open]
    in_flight = any(wf.level("ch%d_%s" % (ch, p), t_open) for ch in LEADS for p in "ab") or any(
        # in the interphase gap: phase 1 ended, phase 2 still to come
        any(r < t_open < f + GAP for r, f in wf.pulses("ch%d_a" % ch))
        for ch in LEADS
    )
    cut = 0
    for ch in LEADS:
        for p in "ab":
            cut += sum(1 for r, f in wf.pulses("ch%d_%s" % (ch, p)) if f - r != WIDTH)
    last_fall = max(falls) if falls else 0
    return {
        "latency": max(0, last_fall - t_open),
        "after": len(after),
        "cut": cut,
        "in_flight": in_flight,
        "err": err,
    }


def heartbeat_trial(vb: Any, inst: Any, timeout_ms: int) -> dict[str, Any]:
    inst.command("*RST;*CLS")
    inst.command("SOUR1:PULS:WIDT 200us;GAP 50us;:SOUR1:FREQ 1kHz;:OUTP1 ON")
    inst.command("SYST:HEAR %dms" % timeout_ms)
    inst.command("OUTP:GLOB ON")
    time.sleep(0.02)
    vb.levels()
    cap = vb.start_capture(timeout_ms / 1000 + 0.15)
    time.sleep(0.01)
    vb.set_input(TRIGGER, 1)  # the marker: high just before the last line ...
    inst.query("*OPC?")
    vb.set_input(TRIGGER, 0)  # ... low once its reply is back
    wf = cap.result()  # silence: nothing is sent until the window is over
    inst.write("*RST;:SYST:HEAR 0;:SYST:FAUL:CLE;*CLS")
    inst.query("*OPC?")
    marks = rises(wf, "trigger")
    lows = [e.cycle for e in wf.edges("trigger") if not e.level]
    mark_up, mark_down = marks[-1], lows[-1]
    edges = lead_edges(wf)
    last_fall = max(c for c, _n, level in edges if not level)
    after = [c for c, n, level in edges if level and n.endswith("_a") and c > last_fall]
    return {
        "hi": last_fall - mark_up,
        "lo": last_fall - mark_down,
        "after": len(after),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    rng = random.Random(args.seed)
    n_il = 3 if args.quick else 30
    n_hb = 1 if args.quick else 8
    il: list[dict[str, Any]] = []
    hb: list[dict[str, Any]] = []
    timeout_ms = 100
    with board() as (vb, inst):
        for i in range(n_il):
            log("interlock trial", i)
            il.append(interlock_trial(vb, inst, rng))
        for i in range(n_hb):
            log("heartbeat trial", i)
            hb.append(heartbeat_trial(vb, inst, timeout_ms))
        restarts = vb.info()["restarts"]
    lat = stats([r["latency"] for r in il])
    mid = [r["latency"] for r in il if r["in_flight"]]
    t1 = Table(
        "Interlock open -> outputs at rest (executed waveform)",
        ["figure", "value"],
        how=(
            "%d openings at random moments, 4 leads at 500 Hz staggered by 500 us, "
            "200 us + 50 us + 200 us pulses; cycles between the interlock input's falling "
            "edge and the last falling edge of any lead pin, on the capture's axis" % len(il)
        ),
    )
    t1.add("openings", len(il))
    t1.add("openings during a pulse (incl. its gap)", len(mid))
    t1.add("opening -> last falling edge, median (cycles)", lat["median"])
    t1.add("opening -> last falling edge, max (cycles)", lat["max"])
    t1.add("  the same max in us", lat["max"] / US)
    t1.add("longest possible: one whole pulse (cycles)", 2 * WIDTH + GAP)
    t1.add("pulses started after the opening (phase-1 rises)", sum(r["after"] for r in il))
    t1.add("pulses cut short", sum(r["cut"] for r in il))
    t1.add(
        "trials whose error queue held 201 (interlock fault)", sum("201" in r["err"] for r in il)
    )
    hi = stats([r["hi"] for r in hb])
    lo = stats([r["lo"] for r in hb])
    t2 = Table(
        "Host silence -> outputs at rest (SYST:HEAR %d ms)" % timeout_ms,
        ["figure", "value"],
        how=(
            "%d trials, lead 1 at 1 kHz; the last line's arrival lies between the marker's "
            "rise and fall; latency = last falling edge of lead 1 - marker" % len(hb)
        ),
    )
    t2.add("trials", len(hb))
    t2.add("last line -> rest, max, upper bound (ms)", hi["max"] / MS)
    t2.add("last line -> rest, min, lower bound (ms)", lo["min"] / MS)
    t2.add("beyond the timeout, max (ms)", hi["max"] / MS - timeout_ms)
    t2.add("marker bracket width, max (ms)", max(r["hi"] - r["lo"] for r in hb) / MS)
    t2.add("pulses started after the last falling edge", sum(r["after"] for r in hb))
    t2.notes.append(
        "the firmware checks the heartbeat in its main loop (2 ms input poll), then "
        "disarms: the pulse in flight completes; %s"
        % ("no restart during the runs" if restarts == 0 else "%d restarts!" % restarts)
    )
    emit("safety", [t1, t2], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
