"""Time: boot to ready, the PIO executor against real time, and the executor against pioemu.

Boot to ready: `power_cycle()` of a running virtual board, then `*IDN?` every 10 ms until it
answers (the supervisor restarts MicroPython, which mounts the flash image and runs main.py
from it); and a cold start (`VirtualBoard()` constructed, flash image built, first answer).

Executor speed: four state machines running the firmware's `pulse_program` with its segment
words (one per lead, as on the board), advanced in 1 ms slices as the supervisor's ticker
advances them; ratio = simulated seconds / wall seconds (above 1: faster than real time).
Also the supervisor's own CPU time over a real capture with the same settings on the
virtual board (its share of one core needed to keep up with real time).

Executor against pioemu (rp2040-pio-emulator): the same program and configuration, the same
segment words in the TX FIFO, the same number of cycles; pins compared cycle by cycle, then
instructions per second: pioemu steps every instruction; the executor both steps cycle by
cycle (`fast_forward=False`) and skips counted loops and stalls (its default).

    python bench/speed.py [--quick]
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

from common import (
    ARM_PIN,
    INTERLOCK_PIN,
    MS,
    PIN_A,
    SYS_HZ,
    US,
    Table,
    board,
    emit,
    firmware_program,
    firmware_sm,
    log,
    parser,
    segments,
    stats,
    wait_ready,
)

RATES = [
    ("DRG: 20 Hz, 200 us + 50 us + 200 us", 25_000, 6_250, 6_250_000),
    ("1 kHz, 200 us + 50 us + 200 us", 25_000, 6_250, 125_000),
    ("10 kHz, 20 us + 5 us + 20 us", 2_500, 625, 12_500),
]


def sms_for(width: int, gap: int, period: int, fast: bool | None = None) -> list[Any]:
    sg = segments()
    out = []
    for i in range(4):
        s = sg.Settings(width=width, gap=gap, period=period, delay=8 + 1000 * i)
        sm = firmware_sm(s, pin_a=PIN_A + 2 * i, fast_forward=fast)
        sm.set_enabled(True)
        out.append(sm)
    return out


def executor_ratio(width: int, gap: int, period: int, seconds: float) -> tuple[float, int]:
    sms = sms_for(width, gap, period)
    slices = int(seconds * 1000)
    t = time.perf_counter()
    for k in range(1, slices + 1):
        for sm in sms:
            sm.run_until(k * MS)
            sm.edges.clear()
    wall = time.perf_counter() - t
    return seconds / wall, slices


def cpu_seconds(pid: int) -> float:
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def supervisor_share(
    vb: Any, inst: Any, width: int, gap: int, period: int, seconds: float
) -> tuple[float, int]:
    inst.command("*RST")
    for ch in range(1, 5):
        inst.command(
            "SOUR%d:PULS:WIDT %dns;GAP %dns;:SOUR%d:PULS:PER %dns;:SOUR%d:DEL %dns;:OUTP%d ON"
            % (ch, width * 8, gap * 8, ch, period * 8, ch, (8 + 1000 * (ch - 1)) * 8, ch)
        )
    inst.command("OUTP:GLOB ON")
    vb.levels()
    pid = vb.info()["pid"]
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    wf = vb.capture(seconds)
    c1, t1 = cpu_seconds(pid), time.perf_counter()
    inst.command("OUTP:GLOB OFF")
    inst.command("*RST")
    pulses = sum(len(wf.pulses("ch%d_a" % ch)) for ch in range(1, 5))
    return (c1 - c0) / (t1 - t0), pulses


def pioemu_run(cycles: int, words: list[int]) -> tuple[float, int, list[int]]:
    """pioemu on the firmware program: (seconds, instructions, pin levels per cycle)."""
    from pioemu import ShiftRegister, State, emulate

    pp = firmware_program()
    prog = pp.pulse_program
    execctrl = prog[3]
    wrap_top, wrap_bottom = execctrl >> 12 & 31, execctrl >> 7 & 31
    state = State(
        x_register=1,  # the driver's `set(x, 1)` before enabling
        output_shift_register=ShiftRegister(0, 32),
        transmit_fifo=deque(words),
        pin_directions=3 << PIN_A,  # out_init: both lead pins are outputs
    )
    levels: list[int] = []
    pins = 1 << ARM_PIN | 1 << INTERLOCK_PIN  # ARM and interlock high

    def inputs(clock: int) -> int:
        return pins

    inputs.__annotations__ = {"clock": int, "return": int}  # pioemu reads them at run time

    steps = emulate(
        list(prog[0]),
        stop_when=lambda _op, s: s.clock >= cycles,
        initial_state=state,
        input_source=inputs,
        shift_osr_right=True,
        out_base=PIN_A,
        out_count=2,
        jmp_pin=INTERLOCK_PIN,
        wrap_target=wrap_bottom,
        wrap_top=wrap_top,
    )
    n = 0
    t = time.perf_counter()
    for prev, cur in steps:
        n += 1
        levels.extend([cur.pin_values >> PIN_A & 3] * (cur.clock - prev.clock))
    return time.perf_counter() - t, n, levels


def executor_run(cycles: int, s: Any, fast: bool) -> tuple[float, list[tuple[int, int, int]]]:
    sm = firmware_sm(s, fast_forward=fast)
    sm.set_enabled(True)
    t = time.perf_counter()
    sm.run_until(cycles)
    return time.perf_counter() - t, list(sm.edges)


def levels_from(edges: list[tuple[int, int, int]], cycles: int) -> list[int]:
    out = []
    value = 0
    k = 0
    for c in range(cycles):
        while k < len(edges) and edges[k][0] <= c:
            _c, pin, level = edges[k]
            bit = 1 << (pin - PIN_A)
            value = value | bit if level else value & ~bit
            k += 1
        out.append(value)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    boot = Table(
        "Boot to ready",
        ["case", "runs", "median s", "max s"],
        how="wall clock until the first `*IDN?` answer, polled every 10 ms",
    )
    ratio = Table(
        "PIO executor speed against real time, four leads",
        [
            "settings",
            "simulated s",
            "ratio (sim / wall)",
            "supervisor CPU share of a core",
            "pulses in its capture",
        ],
        how=(
            "executor: 4 state machines with the firmware's program and words advanced in "
            "1 ms slices; supervisor share: its CPU seconds / wall seconds over a capture on "
            "the virtual board with the same settings on 4 leads (above 1.0: it falls behind)"
        ),
    )
    from picostim.client import ScpiClient
    from picostim.sim import VirtualBoard

    cold = []
    for _ in range(1 if args.quick else 3):
        t = time.perf_counter()
        with VirtualBoard() as vb, ScpiClient(vb.port, timeout=30) as inst:
            wait_ready(inst)
            cold.append(time.perf_counter() - t)
    v = stats(cold)
    boot.add("cold start: VirtualBoard() to first answer", v["n"], v["median"], v["max"])
    warm = []
    with board() as (vb, inst):
        for _ in range(2 if args.quick else 10):
            t = time.perf_counter()
            vb.power_cycle()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                inst.link.reset_input_buffer()
                inst.write("*IDN?")
                line = inst.link.readline()
                if line.startswith(b"PicoStim,"):
                    break
                time.sleep(0.01)
            warm.append(time.perf_counter() - t)
        v = stats(warm)
        boot.add("power_cycle() to first *IDN? answer", v["n"], v["median"], v["max"])
        seconds = 0.2 if args.quick else 1.0
        for label, w, g, p in RATES:
            log("executor", label)
            r, _ = executor_ratio(w, g, p, seconds if p < 1_000_000 else 5 * seconds)
            window = 0.2 if args.quick else 1.0
            share, pulses = supervisor_share(vb, inst, w, g, p, window)
            ratio.add(label, seconds if p < 1_000_000 else 5 * seconds, r, share, pulses)
    # ---- executor against pioemu
    cmp_cycles = 20_000 if args.quick else 300_000
    sg = segments()
    s = sg.Settings(width=20 * US, gap=5 * US, period=100 * US)
    rec = sg.record(s)
    words = rec * (cmp_cycles // 12_500 * len(rec) + 8)
    log("pioemu", cmp_cycles)
    t_emu, n_instr, emu_levels = pioemu_run(cmp_cycles, words)
    t_step, edges_step = executor_run(cmp_cycles, s, fast=False)
    t_fast, edges_fast = executor_run(cmp_cycles, s, fast=True)
    cmp_levels = levels_from(edges_step, cmp_cycles)
    n = min(len(emu_levels), len(cmp_levels))
    same = emu_levels[:n] == cmp_levels[:n] and edges_step == edges_fast
    vs = Table(
        "PIO executor against pioemu, the firmware's lead program",
        ["emulator", "cycles", "instructions", "seconds", "cycles/s", "instructions/s"],
        how=(
            "10 kHz, 20 us + 5 us + 20 us; both fed the same segment words; "
            "instructions counted by pioemu (one step each) and the same for the executor, "
            "which runs the same program for the same cycles; pins identical on every "
            "cycle: %s" % ("yes" if same else "NO")
        ),
    )
    vs.add("pioemu 0.88 (steps)", cmp_cycles, n_instr, t_emu, cmp_cycles / t_emu, n_instr / t_emu)
    vs.add(
        "executor, cycle by cycle",
        cmp_cycles,
        n_instr,
        t_step,
        cmp_cycles / t_step,
        n_instr / t_step,
    )
    vs.notes.append(
        "pin levels of pioemu and of the executor (both modes) identical on all %d cycles: %s"
        % (n, "yes" if same else "NO")
    )
    vs.add(
        "executor, fast-forward (default)",
        cmp_cycles,
        n_instr,
        t_fast,
        cmp_cycles / t_fast,
        n_instr / t_fast,
    )
    ratio.notes.append(
        "real time is %d cycles per second; the virtual board keeps up while the ratio is "
        "above 1 and the supervisor's share is below 1 (other work on the machine counts)" % SYS_HZ
    )
    emit("speed", [boot, ratio, vs], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
