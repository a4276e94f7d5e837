"""Requested settings from the reference anchors -> what PicoStim emits, beside a 50 us timer.

Each request is typed as a user would (`SOUR1:PULS:WIDT 234us`, `SOUR1:FREQ 3`), the firmware's
own rounding is read back (`SOUR1:PULS:CYCL?`), and the emitted value is measured on the
executed PIO: on a capture of the virtual board for widths, gaps and short periods, and for
long periods and long trains on the PIO executor running the firmware's program and segment
words (in the full run the 16 s train is also captured on the virtual board, in real time).

The 50 us column models a timer-tick generator such as Sanworks Pulse Pal 2, whose firmware
counts time in ticks of a 20 kHz timer interrupt and is sent every time as a whole number of
ticks (shared/reference/anchors.md). Model: ticks = floor(t / 50e-6) computed in IEEE double,
the float-to-count truncation reported in PulsePal issue 2 (300 us -> 250 us, a 16 s train at
3 Hz -> 49 pulses); a train plays the pulses that start before its duration. The column
"50 us nearest" rounds to the nearest tick instead, the best any 50 us generator can do.

    python bench/anchors.py [--quick]
"""

from __future__ import annotations

import math
from typing import Any

from common import (
    PIN_A,
    SYS_HZ,
    US,
    Table,
    board,
    emit,
    firmware_sm,
    log,
    parser,
    pulses_from_edges,
    segments,
)
from timing import Spec, play_round

TICK = 50e-6


def ticks_trunc(t: float) -> int:
    return math.floor(t / TICK)


def ticks_near(t: float) -> int:
    return round(t / TICK)


def train_count(duration_ticks: int, period_ticks: int) -> int:
    """Pulses of a train starting at 0, P, 2P, ... before the duration."""
    if period_ticks <= 0:
        return 0
    return -(-duration_ticks // period_ticks)


def sec(cycles: int) -> str:
    return "%.9g s" % (cycles / SYS_HZ)


def us(t: float) -> str:
    return "%.6g us" % (t * 1e6)


def tick_text(t: float, t_req: float) -> str:
    """A 50 us generator's time and its error, e.g. '250 us (-50 us)'."""
    if not t:
        return "0 ticks: no pulse"
    return "%s (%+.3g us)" % (us(t), round((t - t_req) * 1e6, 6))


# (label, what is requested, kind, requested seconds or (period, duration), SCPI commands)
WIDTHS = [
    ("phase width 234 us", 234e-6, "234us"),
    ("phase width 300 us (PulsePal issue 2)", 300e-6, "300us"),
    ("phase width 333.3 us", 333.3e-6, "333.3us"),
    ("phase width 1.7 ms", 1.7e-3, "1.7ms"),
    ("phase width 40 us (Axium minimum)", 40e-6, "40us"),
    ("phase width 20 us (StimJim minimum)", 20e-6, "20us"),
    ("phase width 10 us", 10e-6, "10us"),
    ("phase width 0.5 us", 0.5e-6, "0.5us"),
]
FREQS = [
    ("period at 3 Hz", 3),
    ("period at 7 Hz", 7),
    ("period at 130 Hz", 130),
    ("period at 3.3 kHz", 3300),
]
TRAINS = [
    ("pulses in a 16 s train at 3 Hz (PulsePal issue 2)", 3, 16.0),
    ("pulses in a 1 s train at 7 Hz", 7, 1.0),
    ("pulses in a 2.5 s train at 130 Hz", 130, 2.5),
]


def cycl(inst: Any) -> tuple[int, int, int]:
    w, g, p = inst.query("SOUR1:PULS:CYCL?").split(",")
    return int(w), int(g), int(p)


def executor_count(width: int, gap: int, period: int, train: int) -> int:
    sg = segments()
    s = sg.Settings(width=width, gap=gap, period=period, train=train)
    sm = firmware_sm(s)
    sm.set_enabled(True)
    sm.run_until(train + period + 1000)
    return len(pulses_from_edges(sm.edges, PIN_A))


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    t = Table(
        "Requested vs emitted: PicoStim beside a 50 us timer-tick generator",
        [
            "request",
            "PicoStim cycles",
            "PicoStim emits",
            "PicoStim error",
            "measured on",
            "50 us timer (truncating)",
            "50 us nearest",
        ],
        how=(
            "request typed over SCPI on the virtual board; cycles = the firmware's rounding "
            "(SOUR1:PULS:CYCL?), emitted = measured on the executed PIO (capture or executor, "
            "see 'measured on'); the 50 us columns follow the model in the script's docstring"
        ),
    )
    widths = WIDTHS[:3] if args.quick else WIDTHS
    with board() as (vb, inst):
        # ---- widths: programmed by the firmware, measured on a capture, 4 leads at a time
        programmed = []
        for _label, _t, text in widths:
            inst.command("*RST")
            inst.command("SOUR1:PULS:WIDT %s" % text)
            programmed.append(cycl(inst)[0])
        measured: list[int | None] = []
        for i in range(0, len(widths), 4):
            specs = [
                Spec(w, 0 if w < 8 * US else 25 * US, 50_000 * US) for w in programmed[i : i + 4]
            ]
            log("capture of widths", programmed[i : i + 4])
            wf = play_round(vb, inst, specs, 0.06)
            for ch in range(1, len(specs) + 1):
                ph = wf.pulses("ch%d_a" % ch) + wf.pulses("ch%d_b" % ch)
                got = {f - r for r, f in ph}
                measured.append(got.pop() if len(got) == 1 else None)
        for (label, t_req, _), c, m in zip(widths, programmed, measured, strict=False):
            emitted = m if m is not None else c
            err = emitted / SYS_HZ - t_req
            pp = ticks_trunc(t_req) * TICK
            pn = ticks_near(t_req) * TICK
            t.add(
                label,
                c,
                sec(emitted),
                "%+.3g ns" % (err * 1e9),
                "capture" if m is not None else "CYCL? only",
                tick_text(pp, t_req),
                tick_text(pn, t_req),
            )
        # ---- periods: the firmware's rounding; the executor plays them
        freqs = FREQS[:2] if args.quick else FREQS
        for label, hz in freqs:
            inst.command("*RST")
            inst.command("SOUR1:PULS:WIDT 20us;:SOUR1:FREQ %g" % hz)
            w, g, p = cycl(inst)
            sm = firmware_sm(segments().Settings(width=w, gap=g, period=p))
            sm.set_enabled(True)
            sm.run_until(3 * p + 100)
            rs = [r for r, _ in pulses_from_edges(sm.edges, PIN_A)]
            emitted = rs[1] - rs[0]
            t_req = 1 / hz
            pp, pn = ticks_trunc(t_req) * TICK, ticks_near(t_req) * TICK
            t.add(
                label,
                p,
                sec(emitted),
                "%+.3g ns" % ((emitted / SYS_HZ - t_req) * 1e9),
                "executor",
                tick_text(pp, t_req),
                tick_text(pn, t_req),
            )
        # ---- trains: pulse counts
        trains = TRAINS[:1] if args.quick else TRAINS
        for label, hz, dur in trains:
            inst.command("*RST")
            inst.command("SOUR1:PULS:WIDT 200us;:SOUR1:FREQ %g;:SOUR1:TRA:DUR %g" % (hz, dur))
            w, g, p = cycl(inst)
            train = round(dur * SYS_HZ)
            n_exec = executor_count(w, g, p, train)
            where = "executor"
            n = n_exec
            if not args.quick and dur <= 16:
                log("capturing a %g s train in real time" % dur)
                inst.command("OUTP1 ON")
                vb.levels()
                cap = vb.start_capture(dur + 0.5)
                inst.write("OUTP:GLOB ON")
                wf = cap.result()
                n = len(wf.pulses("ch1_a"))
                where = "capture (executor: %d)" % n_exec
                inst.command("*RST")
            period = 1 / hz
            pp = train_count(ticks_trunc(dur), ticks_trunc(period))
            pn = train_count(ticks_near(dur), ticks_near(period))
            exact = math.ceil(round(dur * hz, 9))  # pulses starting before the duration
            if n != exact:
                t.notes.append(
                    "%s: %g s is a whole number of periods at %g Hz, so pulse %d would start "
                    "exactly at the end; the period rounded to the nearest cycle (%+.3g ns) "
                    "moves that start %s the duration"
                    % (
                        label,
                        dur,
                        hz,
                        exact + 1,
                        (p / SYS_HZ - 1 / hz) * 1e9,
                        "inside" if n > exact else "outside",
                    )
                )
            t.add(
                label,
                "P = %d" % p,
                "%d pulses" % n,
                "%+d" % (n - exact),
                where,
                "%d pulses" % pp,
                "%d pulses" % pn,
            )
    t.notes.append(
        "PicoStim error: emitted minus requested; a request that is not a whole number of "
        "8 ns cycles is rounded to the nearest cycle, so the error is at most 4 ns per time"
    )
    t.notes.append(
        "pulse-count error: emitted minus the pulses that start within the requested "
        "duration at the requested rate"
    )
    emit("anchors", [t], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
