"""Timing exactness: emitted minus programmed, in 125 MHz cycles, from the executed PIO.

Part 1 (virtual board): settings are sent over SCPI as exact multiples of 8 ns, four leads at
a time, and each round is captured from before `OUTP:GLOB ON` (so the first pulse, the train
ends and the start skew are in the window). Width, gap, period, burst period, pulses per
burst and train pulse count are measured on the captured edges against what was asked; the
oracle is computed here from the request, not from the firmware.

Part 2 (executor, long periods): periods up to the one-hour maximum cannot be captured in
real time, so the firmware's own PIO program (`stim.pulse_program`) runs in the PIO executor
with the firmware's own segment words (`stim.segments`) exactly as `stim.lead` loads them.

    python bench/timing.py [--quick]
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from common import (
    MS,
    PIN_A,
    SYS_HZ,
    US,
    Table,
    board,
    emit,
    firmware_sm,
    log,
    ns,
    parser,
    pulses_from_edges,
    rises,
    segments,
)

METRICS = ("width", "gap", "period", "burst period", "pulses per burst", "train pulse count")
MIN_PERIOD = 12_500  # the default frequency limit: 10 kHz
MAX_DUTY = 0.5
# From the start of a capture to the first pulse: the supervisor first brings its PIO
# executor up to the present, then the firmware parses `OUTP:GLOB ON` and prepares four
# leads in MicroPython (tens to a few hundred ms on a loaded machine).
START_ALLOWANCE = 0.1


class Spec:
    """What was asked of one lead, in cycles."""

    def __init__(
        self,
        width: int,
        gap: int,
        period: int,
        shape: str = "BIPH",
        polarity: int = 0,
        burst_count: int = 1,
        burst_period: int = 0,
        train: int = 0,
        delay: int = 0,
    ) -> None:
        self.width, self.gap, self.period = width, gap, period
        self.shape, self.polarity = shape, polarity
        self.burst_count, self.burst_period = burst_count, burst_period
        self.train, self.delay = train, delay

    def pulse(self) -> int:
        return self.width if self.shape == "MON" else 2 * self.width + self.gap

    def spacing(self) -> int:
        return self.burst_period if self.burst_count > 1 else self.period

    def starts(self, limit: int) -> list[int]:
        """Pulse start offsets from the first pulse, below `limit` (or the train's end)."""
        out = []
        end = min(limit, self.train) if self.train else limit
        k = 0
        while True:
            base = k * self.spacing()
            if base >= end:
                return out
            for j in range(self.burst_count):
                t = base + j * self.period
                if t < end:
                    out.append(t)
            k += 1

    def commands(self, ch: int) -> list[str]:
        s = "SOUR%d:" % ch
        return [
            # Neutral settings first, so every intermediate combination is playable.
            s + "BURS:COUN 1;:%sTRA:DUR 0;:%sDEL 0;:%sPULS:WIDT 8us;GAP 0" % (s, s, s),
            s + "PULS:PER %s" % ns(self.period),
            s + "PULS:SHAP %s;POL %s" % (self.shape, "INV" if self.polarity else "NORM"),
            s + "PULS:WIDT %s;GAP %s" % (ns(self.width), ns(self.gap)),
            s + "BURS:PER %s;COUN %d" % (ns(self.burst_period), self.burst_count)
            if self.burst_count > 1
            else s + "BURS:COUN 1",
            s + "TRA:DUR %s;:%sDEL %s" % (ns(self.train), s, ns(self.delay)),
        ]

    def settings(self) -> Any:
        sg = segments()
        return sg.Settings(
            width=self.width,
            gap=self.gap if self.shape == "BIPH" else 0,
            period=self.period,
            shape=sg.BIPH if self.shape == "BIPH" else sg.MON,
            polarity=self.polarity,
            burst_count=self.burst_count,
            burst_period=self.burst_period,
            train=self.train,
            delay=self.delay,
        )

    def __repr__(self) -> str:
        bits = ["w=%d" % self.width, "g=%d" % self.gap, "P=%d" % self.period, self.shape]
        if self.polarity:
            bits.append("INV")
        if self.burst_count > 1:
            bits.append("burst %d/%d" % (self.burst_count, self.burst_period))
        if self.train:
            bits.append("train %d" % self.train)
        return "Spec(%s)" % ", ".join(bits)


def measure(
    spec: Spec, p1: list[tuple[int, int]], p2: list[tuple[int, int]], window: int, whole: bool
) -> dict[str, list[int]]:
    """Errors (emitted - programmed) per metric; p1/p2 = complete pulses on the phase-1 and
    phase-2 pins; `whole`: the window holds the train from before its first pulse."""
    err: dict[str, list[int]] = {m: [] for m in METRICS}
    err["jitter"] = []
    err["width"] += [f - r - spec.width for r, f in p1 + p2]
    if spec.shape == "BIPH":
        rises2 = [r for r, _ in p2]
        j = 0
        for _r, f in p1:
            while j < len(rises2) and rises2[j] < f:
                j += 1
            if j < len(rises2):
                err["gap"].append(rises2[j] - f - spec.gap)
    starts = [r for r, _ in p1]
    diffs = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    if spec.burst_count > 1:
        inter = spec.burst_period - (spec.burst_count - 1) * spec.period
        intra = [d for d in diffs if abs(d - spec.period) <= abs(d - inter)]
        err["period"] += [d - spec.period for d in intra]
        # Bursts: runs of starts split where the spacing is nearer the pause than the period.
        bursts: list[list[int]] = [[starts[0]]] if starts else []
        for d, s in zip(diffs, starts[1:], strict=False):
            if abs(d - spec.period) <= abs(d - inter):
                bursts[-1].append(s)
            else:
                bursts.append([s])
        firsts = [b[0] for b in bursts]
        err["burst period"] += [
            b - a - spec.burst_period for a, b in zip(firsts, firsts[1:], strict=False)
        ]
        inner = bursts[1:-1] if not whole else bursts[:-1]
        err["pulses per burst"] += [len(b) - spec.burst_count for b in inner]
        jit = intra
    else:
        err["period"] += [d - spec.period for d in diffs]
        jit = diffs
    if len(jit) >= 2:
        err["jitter"].append(max(jit) - min(jit))
    if whole and spec.train and starts and starts[0] + spec.train + spec.pulse() < window:
        expected = spec.starts(window)
        err["train pulse count"].append(len(starts) - len(expected))
    return err


def merge(total: dict[str, list[int]], part: dict[str, list[int]]) -> None:
    for k, v in part.items():
        total.setdefault(k, []).extend(v)


# --------------------------------------------------------------------------- settings


def grid() -> list[Spec]:
    out = []
    for period_us in (100, 1000, 7692, 50_000):  # 10 kHz, 1 kHz, 130 Hz, 20 Hz
        for width_us in (1, 10, 25, 100, 200, 1000):
            for gap in (0, 8, 50 * US):
                s = Spec(width_us * US, gap, period_us * US)
                if s.pulse() * 1 > s.period * MAX_DUTY + s.gap or s.period - s.pulse() < 12:
                    continue
                if 2 * s.width > MAX_DUTY * s.period:
                    continue
                out.append(s)
    out.append(Spec(8, 0, MIN_PERIOD))  # the shortest phase the segment words allow
    out.append(Spec(8, 8, MIN_PERIOD, shape="BIPH"))
    out.append(Spec(200 * US, 0, 50_000 * US, shape="MON"))
    out.append(Spec(200 * US, 50 * US, 50_000 * US, polarity=1))
    out.append(Spec(50 * US, 0, 500 * US, burst_count=3, burst_period=5 * MS))
    out.append(Spec(10 * US, 8, 100 * US, burst_count=10, burst_period=10 * MS))
    out.append(Spec(200 * US, 50 * US, 1000 * US, train=10 * MS))
    out.append(Spec(100 * US, 0, 333_333, train=5 * MS))  # 375 Hz, train not a multiple
    return out


def random_spec(rng: random.Random, max_period: int, with_train: bool = True) -> Spec:
    """Random settings within the default limits (10 kHz, 50 % duty), in whole cycles."""
    period = rng.randint(MIN_PERIOD, max_period)
    shape = "MON" if rng.random() < 0.2 else "BIPH"
    active_max = int(period * MAX_DUTY)
    if shape == "BIPH":
        width = rng.randint(8, max(8, min(active_max // 2, 125_000)))
        gap = 0 if rng.random() < 0.3 else rng.randint(8, max(8, min(period // 4, 12_500)))
        if 2 * width + gap > period - 12:
            gap = 0
    else:
        width = rng.randint(8, max(8, min(active_max, 125_000)))
        gap = 0
    s = Spec(width, gap, period, shape=shape, polarity=rng.randint(0, 1))
    if rng.random() < 0.25:
        s.burst_count = rng.randint(2, 5)
        span = (s.burst_count - 1) * period + s.pulse()
        s.burst_period = span + 12 + rng.randint(0, 3 * period)
        if s.burst_period > 3600 * SYS_HZ:  # the SCPI maximum
            s.burst_count, s.burst_period = 1, 0
    if with_train and rng.random() < 0.3:
        s.train = rng.randint(1, 6) * s.spacing() - rng.randint(0, s.spacing() // 2)
    if rng.random() < 0.2:
        s.delay = rng.randint(8, min(2 * period, 30 * SYS_HZ))  # SCPI maximum: 30 s
    return s


# --------------------------------------------------------------------------- part 1: board


def play_round(vb: Any, inst: Any, specs: list[Spec], seconds: float, tries: int = 3) -> Any:
    """Configure leads 1.. with `specs` and capture `seconds` from just before they start.

    The leads are disarmed as soon as the window is over (`OUTP:GLOB OFF`: the pulse in
    flight completes) and halted after it (`*RST`: a disarmed lead's state machine keeps
    playing rest in exact time). The virtual board executes every cycle of every running
    state machine and at high rates on four leads it runs slower than real time (see
    bench/speed.py), so time spent running outside the window is avoided.
    A round whose leads started too late for the window (a loaded machine) is played again
    with more time before its pulses.
    """
    allowance = START_ALLOWANCE
    for _ in range(tries):
        inst.command("*RST")
        for ch, spec in enumerate(specs, 1):
            for c in spec.commands(ch):
                inst.command(c)
            inst.command("OUTP%d ON" % ch)
        vb.levels()  # brings the executor up to the present first: the window starts now
        began = time.monotonic()
        cap = vb.start_capture(seconds + allowance)
        inst.write("OUTP:GLOB ON")
        time.sleep(max(0.0, seconds + allowance - (time.monotonic() - began)))
        inst.write("OUTP:GLOB OFF")
        wf = cap.result()
        inst.command("*RST")
        phase1 = ["ch%d_%s" % (ch, "b" if sp.polarity else "a") for ch, sp in enumerate(specs, 1)]
        starts = [rises(wf, name) for name in phase1]
        if all(st and st[0] < allowance * SYS_HZ for st in starts):
            return wf
        log("late start, again with more time", [st[:1] for st in starts])
        allowance *= 3
    return wf


def lead_pulses(wf: Any, ch: int, spec: Spec) -> tuple[list, list]:
    a, b = wf.pulses("ch%d_a" % ch), wf.pulses("ch%d_b" % ch)
    return (b, a) if spec.polarity else (a, b)


def board_part(args: Any, rng: random.Random) -> tuple[dict[str, list[int]], list[Table], int]:
    specs = grid()
    if args.quick:
        specs = specs[:1] + [s for s in specs if s.burst_count > 1 or s.train][::2]
    n_random = 1 if args.quick else 64
    specs += [random_spec(rng, 60 * MS) for _ in range(n_random)]
    total: dict[str, list[int]] = {}
    skew: list[int] = []
    delay_err: list[int] = []
    sync_lat: list[int] = []
    rounds = 0
    missed = 0  # start rounds whose first pulse fell outside the window
    with board() as (vb, inst):
        for i in range(0, len(specs), 4):
            group = specs[i : i + 4]
            need = max(max(s.spacing() * 3 + s.pulse() + s.delay for s in group), 2 * MS)
            for s in group:
                if s.train:
                    need = max(need, s.train + s.pulse() + s.delay + MS)
            seconds = min(0.05 if args.quick else 0.4, need / SYS_HZ)
            log("round", rounds, group, "%.3f s" % seconds)
            wf = play_round(vb, inst, group, seconds)
            rounds += 1
            for ch, spec in enumerate(group, 1):
                p1, p2 = lead_pulses(wf, ch, spec)
                merge(total, measure(spec, p1, p2, wf.cycles, whole=True))
        # Skew of leads started together: identical settings, then distinct delays.
        same = Spec(100 * US, 0, 1000 * US)
        delays = [0, 10 * US, 250 * US, 777 * US]
        for _ in range(1 if args.quick else 10):
            wf = play_round(vb, inst, [same] * 4, 0.005)
            firsts = [(rises(wf, "ch%d_a" % ch) or [None])[0] for ch in range(1, 5)]
            if None in firsts:
                missed += 1
                continue
            skew.append(max(firsts) - min(firsts))
            sync = rises(wf, "sync")
            if sync:
                sync_lat.append(sync[0] - firsts[0])
            specs_d = [Spec(100 * US, 0, 1000 * US, delay=d) for d in delays]
            wf = play_round(vb, inst, specs_d, 0.005)
            firsts = [(rises(wf, "ch%d_a" % ch) or [None])[0] for ch in range(1, 5)]
            if None in firsts:
                missed += 1
                continue
            delay_err += [f - firsts[0] - d for f, d in zip(firsts, delays, strict=False)]
        inst.command("OUTP:GLOB OFF")
    t = Table(
        "Leads started together (virtual board)",
        ["figure", "starts", "min", "max", "note"],
        how=(
            "4 leads enabled in one `OUTP:GLOB ON`, captured from before the command; "
            "first rising edge of each lead's phase-1 pin."
        ),
    )
    if skew:
        t.add("skew, identical settings (cycles)", len(skew), min(skew), max(skew), "max - min")
    if delay_err:
        t.add(
            "delay error (cycles)",
            len(delay_err),
            min(delay_err),
            max(delay_err),
            "delays 0, 10, 250, 777 us",
        )
    if missed:
        t.notes.append("%d start rounds began after the capture window and are left out" % missed)
    if sync_lat:
        t.add(
            "sync rise - lead 1 rise (cycles)",
            len(sync_lat),
            min(sync_lat),
            max(sync_lat),
            "sync follows lead 1's phase-1 pin",
        )
    return total, [t], rounds


# --------------------------------------------------------------------------- part 2: executor


def long_specs(rng: random.Random, quick: bool) -> list[Spec]:
    out = [
        Spec(200 * US, 50 * US, SYS_HZ),  # 1 Hz
        Spec(200 * US, 50 * US, 60 * SYS_HZ),
        Spec(1000 * US, 0, 1000 * SYS_HZ),
        Spec(200 * US, 50 * US, 3600 * SYS_HZ),  # the longest period: 1 h
        Spec(200 * US, 50 * US, SYS_HZ, burst_count=5, burst_period=60 * SYS_HZ),
        Spec(200 * US, 50 * US, 41_666_667, train=16 * SYS_HZ),  # 16 s at 3 Hz
        Spec(100 * US, 0, SYS_HZ, train=3600 * SYS_HZ),  # 1 h at 1 Hz: 3600 pulses
        Spec(200 * US, 50 * US, 10 * SYS_HZ, delay=30 * SYS_HZ),
        Spec(125_000 * US, 8, 3600 * SYS_HZ),  # 1 s phases
    ]
    if quick:
        out = out[:3] + out[5:6]
    n = 3 if quick else 40
    for _ in range(n):
        out.append(random_spec(rng, 3600 * SYS_HZ))
    return out


def executor_part(args: Any, rng: random.Random) -> tuple[dict[str, list[int]], int, float, int]:
    total: dict[str, list[int]] = {}
    simulated = 0
    began = time.perf_counter()
    specs = long_specs(rng, args.quick)
    for spec in specs:
        log("executor", spec)
        s = spec.settings()
        sm = firmware_sm(s)
        sm.set_enabled(True)
        periods = 4 if spec.burst_count == 1 else 3
        until = spec.delay + periods * spec.spacing() + spec.pulse() + 1000
        if spec.train:
            until = spec.delay + spec.train + spec.pulse() + 1000
        sm.run_until(until)
        simulated += until
        a = pulses_from_edges(sm.edges, PIN_A)
        b = pulses_from_edges(sm.edges, PIN_A + 1)
        p1, p2 = (b, a) if spec.polarity else (a, b)
        merge(total, measure(spec, p1, p2, until, whole=True))
        first = p1[0][0] if p1 else -1
        total.setdefault("first pulse - delay - 8", []).append(first - spec.delay - 8)
    return total, len(specs), time.perf_counter() - began, simulated


def summary(title: str, how: str, errors: dict[str, list[int]]) -> Table:
    t = Table(
        title,
        ["metric", "instances", "min error", "max error", "mean abs error", "nonzero"],
        how=how,
    )
    for m in (*METRICS, "first pulse - delay - 8"):
        v = errors.get(m, [])
        if not v:
            continue
        t.add(
            m,
            len(v),
            min(v),
            max(v),
            statistics.fmean(abs(x) for x in v),
            sum(1 for x in v if x),
        )
    jit = errors.get("jitter", [])
    if jit:
        t.add("period-to-period jitter (p-p)", len(jit), min(jit), max(jit), "", "")
    return t


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    rng = random.Random(args.seed)
    errors, extra, rounds = board_part(args, rng)
    specs = sum(len(v) for k, v in errors.items() if k == "jitter")
    t1 = summary(
        "Timing exactness on the virtual board (captures)",
        (
            "grid of widths 1 us..1 ms, gaps 0/64 ns/50 us, 10 kHz..20 Hz, plus monophasic, "
            "inverted, bursts, trains and %d random settings within the default limits "
            "(seed %d), 4 leads per capture, %d captures of the executed PIO; error = emitted - "
            "programmed, in 8 ns cycles; jitter = max - min of consecutive start-to-start "
            "intervals per lead (%d leads)"
        )
        % (1 if args.quick else 64, args.seed, rounds, specs),
        errors,
    )
    ex_errors, n_long, wall, simulated = executor_part(args, rng)
    t2 = summary(
        "Timing exactness of long settings (executor, firmware program and words)",
        (
            "%d settings with periods up to 3600 s, burst periods to 60 s, delays to 30 s, "
            "trains to 1 h (16 s at 3 Hz among them) and random ones, played from enable by "
            "the firmware's pulse_program with stim.segments words on the PIO executor "
            "(%.0f simulated s in %.1f s wall); 'first pulse - delay - 8' checks the start "
            "offset the segment compiler documents (FIRST_PULSE = 8 cycles)"
        )
        % (n_long, simulated / SYS_HZ, wall),
        ex_errors,
    )
    emit("timing", [t1, *extra, t2], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
