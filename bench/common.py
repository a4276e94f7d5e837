"""Shared pieces of the benchmark scripts: tables, the machine, boards and the firmware's PIO.

Every script builds a list of `Table`s, prints them, and with `--json FILE` also writes them
(with its figures' methods) for `bench/run_all.py`, which assembles `bench/results.md`.

Times are in 125 MHz system-clock cycles (8 ns) unless a column says otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "board"
HOST = ROOT / "host"
MP_DIR = HOST / "picostim" / "sim" / "mp"
for _p in (BOARD, HOST):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

SYS_HZ = 125_000_000
US = 125  # cycles per microsecond
MS = 125_000


# --------------------------------------------------------------------------- tables


@dataclass
class Table:
    """One table of figures, with how they were obtained."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    how: str = ""
    notes: list[str] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))


def fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000 or abs(v) < 0.01:
            return "%.4g" % v
        return "%.3f" % v if abs(v) < 10 else "%.2f" % v if abs(v) < 100 else "%.1f" % v
    return str(v)


def text_table(t: Table) -> str:
    cells = [t.columns] + [[fmt(v) for v in row] for row in t.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(t.columns))]
    out = ["== " + t.title]
    for k, row in enumerate(cells):
        out.append(
            "  ".join(c.rjust(w) if k else c.ljust(w) for c, w in zip(row, widths, strict=False))
        )
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    for n in t.notes:
        out.append("  note: " + n)
    return "\n".join(out)


def md_table(t: Table, level: str = "###") -> str:
    out = ["%s %s" % (level, t.title), ""]
    if t.how:
        out += ["How: " + t.how, ""]
    out.append("| " + " | ".join(t.columns) + " |")
    out.append("|" + "|".join(" --- " for _ in t.columns) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |")
    out.append("")
    for n in t.notes:
        out.append("- " + n)
    if t.notes:
        out.append("")
    return "\n".join(out)


def parser(doc: str | None) -> argparse.ArgumentParser:
    first = (doc or "").strip().splitlines()[0] if doc else ""
    ap = argparse.ArgumentParser(description=first)
    ap.add_argument("--quick", action="store_true", help="a few seconds: for CI and smoke tests")
    ap.add_argument("--json", metavar="FILE", help="also write the tables as JSON")
    ap.add_argument("--seed", type=int, default=2024, help="seed of the randomized parts")
    return ap


def emit(name: str, tables: Sequence[Table], args: argparse.Namespace, **extra: Any) -> None:
    for t in tables:
        print(text_table(t))
        print()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"name": name, "quick": bool(args.quick), "tables": [asdict(t) for t in tables]}
                | extra,
                indent=1,
            )
        )


def stats(values: Sequence[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {"n": 0, "min": 0, "median": 0, "p99": 0, "max": 0, "mean": 0}
    return {
        "n": len(v),
        "min": v[0],
        "median": statistics.median(v),
        "p99": v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))],
        "max": v[-1],
        "mean": statistics.fmean(v),
    }


# --------------------------------------------------------------------------- the machine


def micropython_version() -> str:
    from picostim.sim.supervisor import find_micropython

    try:
        mp = find_micropython()
        code = (
            "import sys; v = sys.implementation.version; "
            "print('|'.join(['.'.join(str(x) for x in v[:3]), str(v[3:4] and v[3]), "
            "str(sys.maxsize > 2**32), sys.version.split('MicroPython ')[-1]]))"
        )
        out = subprocess.run([mp, "-c", code], capture_output=True, text=True, timeout=20)
        ver, pre, wide, build = out.stdout.strip().split("|")
        return "MicroPython %s%s (%s; unix port, %s)" % (
            ver,
            "-" + pre if pre else "",
            build,
            "64-bit" if wide == "True" else "32-bit",
        )
    except Exception as exc:  # reported, not fatal: the figures still stand
        return "unknown (%s)" % exc


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except Exception:
        return "unknown"


def machine_info() -> dict[str, str]:
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "micropython": micropython_version(),
        "commit": git_commit(),
        "load average at start (1, 5, 15 min)": load,
    }


# --------------------------------------------------------------------------- boards


@contextmanager
def board(timeout: float = 60.0) -> Iterator[tuple[Any, Any]]:
    """A fresh virtual board and a connected SCPI client."""
    from picostim.client import ScpiClient
    from picostim.sim import VirtualBoard

    with VirtualBoard() as vb, ScpiClient(vb.port, timeout=timeout) as inst:
        wait_ready(inst)
        yield vb, inst


def wait_ready(inst: Any, seconds: float = 30.0) -> str:
    """Poll *IDN? until the board answers; return the answer."""
    deadline = time.monotonic() + seconds
    saved = inst.link.timeout
    inst.link.timeout = 1.0
    try:
        while True:
            try:
                inst.link.reset_input_buffer()
                reply = inst.query("*IDN?")
                if reply.startswith("PicoStim,"):
                    inst.link.reset_input_buffer()
                    return str(reply)
            except Exception:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError("the board did not answer *IDN?")
            time.sleep(0.05)
    finally:
        inst.link.timeout = saved


def ns(cycles: int) -> str:
    """An exact SCPI time for a whole number of cycles (8 ns each)."""
    return "%dns" % (cycles * 8)


def rises(wf: Any, name: str) -> list[int]:
    return [e.cycle for e in wf.edges(name) if e.level]


# --------------------------------------------------------------------------- firmware PIO

PIN_A, ARM_PIN, INTERLOCK_PIN = 2, 0, 1  # the executor-direct wiring (pioemu reads IN from 0)


def _rp2_asm() -> Any:
    if "rp2_asm" in sys.modules:
        return sys.modules["rp2_asm"]
    sys.path.insert(0, str(MP_DIR))
    try:
        return importlib.import_module("rp2_asm")
    finally:
        sys.path.remove(str(MP_DIR))


def firmware_program() -> Any:
    """The firmware's `stim.pulse_program`, assembled by the virtual board's assembler."""
    import stim

    asm = _rp2_asm()
    fake = types.ModuleType("rp2")
    fake.asm_pio = asm.asm_pio  # type: ignore[attr-defined]
    fake.PIO = asm.PIOConst  # type: ignore[attr-defined]
    saved = sys.modules.get("rp2")
    sys.modules["rp2"] = fake
    sys.modules.pop("stim.pulse_program", None)
    try:
        return importlib.import_module("stim.pulse_program")
    finally:
        if saved is None:
            sys.modules.pop("rp2", None)
        else:
            sys.modules["rp2"] = saved
        stim.__dict__.pop("pulse_program", None)


def segments() -> Any:
    return importlib.import_module("stim.segments")


def firmware_sm(settings: Any, pin_a: int = PIN_A, fast_forward: bool | None = None) -> Any:
    """A state machine running the firmware's lead program with the firmware's own segment
    words for `settings`, wired as `stim.lead` wires it (DMA ring, delay words in the FIFO,
    `set(x, 1)` before enabling), ARM and interlock held high. Not yet enabled."""
    from picostim.pio import ConstantInputs, DmaFeed, StateMachine

    pp = firmware_program()
    sg = segments()
    prog = pp.pulse_program
    pinctrl = 2 << 20 | ARM_PIN << 15 | pin_a  # OUT count 2, IN_BASE = ARM, OUT_BASE = A
    sm = StateMachine(
        list(prog[0]),
        execctrl=prog[3] | INTERLOCK_PIN << 24,
        shiftctrl=prog[4],
        pinctrl=pinctrl,
        inputs=ConstantInputs({ARM_PIN: 1, INTERLOCK_PIN: 1}),
        fast_forward=fast_forward,
    )
    sm.pin_dirs = 3 << pin_a
    sm.exec(_rp2_asm().asm_pio_encode("set(x, 1)", 0))
    for w in sg.delay_words(settings):
        assert sm.put(w)
    rec = sg.record(settings)
    count = sg.train_words(settings) or (sg.COUNT_MAX // len(rec)) * len(rec)
    sm.attach_dma(DmaFeed(rec, ring_words=len(rec), count=count))
    return sm


def pulses_from_edges(edges: list[tuple[int, int, int]], pin: int) -> list[tuple[int, int]]:
    out = []
    rise = None
    for c, p, level in edges:
        if p != pin:
            continue
        if level:
            rise = c
        elif rise is not None:
            out.append((rise, c))
            rise = None
    return out


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# A script stopped with SIGTERM (a timeout, make, CI) still stops the boards it started.
signal.signal(signal.SIGTERM, _terminate)


_T0 = time.monotonic()


def log(*parts: Any) -> None:
    """Progress on stderr, with seconds since the script started."""
    print("[%7.1f s]" % (time.monotonic() - _T0), *parts, file=sys.stderr, flush=True)
