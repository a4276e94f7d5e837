"""Memory under the Pico-sized heap: `SYST:MEM:FREE?` at boot, configured, running, in a storm.

`SYST:MEM:FREE?` runs `gc.collect()` and then reports `gc.mem_free()`: the bytes of the
firmware's 192 KiB heap not held by live objects. The virtual board's MicroPython is the
64-bit unix port: its pointers and small objects are twice a Pico's, so the same firmware
holds more of the same-sized heap here than on a Pico (these figures are pessimistic).

`SYST:MEM:LARG?` beside it: the largest block that can be had in one piece, counting the
4 KB reserve the firmware lends to file writes and long replies.

Also: the largest segment record (burst length) the firmware accepts for one lead, and the
largest that four leads can then be started with (each lead's record is a DMA read ring in
the 8 KB record memory taken at boot).

    python bench/memory.py [--quick]
"""

from __future__ import annotations

import random
from typing import Any

from common import Table, board, emit, log, parser, segments

STORM = [
    "SOUR{ch}:PULS:WIDT {w}us",
    "SOUR{ch}:PULS:GAP {g}us",
    "SOUR{ch}:FREQ {f}",
    "SOUR{ch}:PULS:WIDT?;GAP?;PER?",
    "SOUR{ch}:BURS:COUN {b};:SOUR{ch}:BURS:PER 1s",
    "SOUR{ch}:BURS:COUN 1",
    "SOUR{ch}:CURR {i}mA",
    "SOUR{ch}:CURR?",
    "SOUR{ch}:PULS:SHAP BIPH",
    "SOUR{ch}:PULS:POL {pol}",
    "SOUR{ch}:TRA:DUR {t}",
    "SOUR{ch}:DEL {d}us",
    "SYST:ERR:ALL?",
    "*IDN?",
    "BOGUS:HEADER {w}",
    "SOUR{ch}:PULS:WIDT {w}Hz",
    "SYST:LOG?",
    "SOUR{ch}:LIST:PULS 0,{w}us,{w2}us,{w}us",
]


def storm_line(rng: random.Random) -> str:
    return rng.choice(STORM).format(
        ch=rng.randint(1, 4),
        w=rng.choice([10, 50, 100, 200, 400]),
        w2=rng.choice([1000, 2000]),
        g=rng.choice([0, 10, 50]),
        f=rng.choice([2, 20, 50, 130]),
        b=rng.randint(2, 20),
        i=rng.choice([0, 0.1, 0.5, 1, 2]),
        pol=rng.choice(["NORM", "INV"]),
        t=rng.choice([0, 1, 10]),
        d=rng.choice([0, 10, 1000]),
    )


def free(inst: Any) -> int:
    return int(inst.query("SYST:MEM:FREE?"))


def largest_block(inst: Any) -> int:
    return int(inst.query("SYST:MEM:LARG?"))


def burst_cmd(ch: int, n: int) -> str:
    # 10 us phases, no gap (3 words a pulse), 1 kHz inside the burst, 2 ms pause
    return "SOUR%d:PULS:WIDT 10us;GAP 0;:SOUR%d:FREQ 1kHz;:SOUR%d:BURS:PER %dms;COUN %d" % (
        ch,
        ch,
        ch,
        n + 2,
        n,
    )


def accepts(inst: Any, ch: int, n: int) -> tuple[bool, str]:
    inst.write("*RST;*CLS")
    inst.write(burst_cmd(ch, n))
    err = inst.query("SYST:ERR:ALL?")
    ok = err.startswith("0,") and inst.query("SOUR%d:BURS:COUN?" % ch) == str(n)
    return ok, err


def starts_four(inst: Any, n: int) -> tuple[bool, str]:
    inst.write("*RST;*CLS")
    for ch in range(1, 5):
        inst.write(burst_cmd(ch, n))
        inst.write("OUTP%d ON" % ch)
    err = inst.query("SYST:ERR:ALL?")
    if not err.startswith("0,"):
        return False, "setting: " + err
    inst.write("OUTP:GLOB ON")
    err = inst.query("SYST:ERR:ALL?")
    glob = inst.query("OUTP:GLOB?")
    inst.write("*RST")
    inst.query("*OPC?")
    return err.startswith("0,"), "%s (OUTP:GLOB? then %s)" % (err, glob)


def largest(test: Any, lo: int, hi: int) -> tuple[int, str]:
    """Largest n in [lo, hi] with test(n) true (assumes monotone), and the error above it."""
    why = ""
    if test(lo)[0] is False:
        return 0, test(lo)[1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        ok, err = test(mid)
        log("  n = %d: %s" % (mid, "ok" if ok else err))
        if ok:
            lo = mid
        else:
            hi = mid - 1
            why = err
    return lo, why


def record_words(n: int) -> int:
    sg = segments()
    s = sg.Settings(
        width=1250, gap=0, period=125_000, burst_count=n, burst_period=(n + 2) * 125_000
    )
    return sg.record_len(s)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    rng = random.Random(args.seed)
    n_storm = 200 if args.quick else 3000
    t = Table(
        "Heap (192 KiB, 64-bit unix port) seen by SYST:MEM:FREE?",
        ["state", "free bytes", "largest block", "note"],
        how=(
            "`SYST:MEM:FREE?` (gc.collect() then gc.mem_free()) and `SYST:MEM:LARG?` on a "
            "fresh virtual board"
        ),
    )
    with board() as (vb, inst):
        boot = free(inst)
        t.add("after boot", boot, largest_block(inst), "4 KB reserve and record memory held")
        for ch in range(1, 5):
            inst.command(
                "SOUR%d:PULS:WIDT 200us;GAP 50us;:SOUR%d:FREQ 20Hz;:OUTP%d ON" % (ch, ch, ch)
            )
        t.add(
            "4 leads configured (DRG 20 Hz, 200 us), outputs off",
            free(inst),
            largest_block(inst),
            "",
        )
        inst.command("OUTP:GLOB ON")
        running = free(inst)
        t.add("4 leads running", running, largest_block(inst), "rings from the record memory")
        log("storm of", n_storm)
        seen = []
        blocks = []
        for i in range(n_storm):
            line = storm_line(rng)
            if "?" in line:
                inst.query(line)
            else:
                inst.write(line)
            if i % 25 == 24:
                seen.append(free(inst))
                blocks.append(largest_block(inst))
                inst.write("*CLS")
        inst.write("*CLS")
        t.add(
            "during a storm of %d random commands, min" % n_storm,
            min(seen),
            min(blocks),
            "%d samples; peak use over boot: %d bytes" % (len(seen), boot - min(seen)),
        )
        t.add("during the storm, max", max(seen), max(blocks), "")
        inst.write("*RST;*CLS")
        after = free(inst)
        t.add("after *RST", after, largest_block(inst), "")
        restarts = vb.info()["restarts"]
        # ---- largest records
        log("largest burst for one lead")
        hi = 120 if args.quick else 700
        one, why_one = largest(lambda n: accepts(inst, 1, n), 1, hi)
        log("largest burst for four leads started together")
        four, why_four = largest(lambda n: starts_four(inst, n), 1, min(one, hi))
    r = Table(
        "Largest segment record",
        ["case", "largest burst count", "record words", "what the next one gets"],
        how=(
            "bisection over SOUR:BURS:COUN with 10 us phases, no gap, 1 kHz bursts "
            "(3 words a pulse; records of up to 1024 words, 2048 for all leads together)"
        ),
    )
    r.add("one lead, setting accepted", one, record_words(one) if one else 0, why_one or "-")
    r.add(
        "four leads, all started by OUTP:GLOB ON",
        four,
        record_words(four) if four else 0,
        why_four or "-",
    )
    if restarts:
        t.notes.append("the board restarted %d times during the storm" % restarts)
    emit("memory", [t, r], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
