"""Reliability campaign on the virtual board; writes docs/reliability.md.

    python bench/reliability.py                 # the full campaign (about 15 minutes)
    python bench/reliability.py --quick         # a small one, for CI (under a minute)
    python bench/reliability.py --lines 100000 --storms 2 --storm-size 10000 --soak 180

Parts (each counts what it tried, what survived and what was lost):

1. SCPI fuzzing driven by hypothesis: random bytes, over-long lines, control characters,
   unicode, huge numbers, NaN/Inf, wrong units, mutated and grammar-built commands. After
   every line a tagged probe (`*ESE k;*ESE?;:SYST:ERR:ALL?`) must come back, so the firmware
   answered or queued an error; no -200 (an exception the firmware did not expect); the
   supervisor's restart count must not move (the process did not restart); after every batch
   whose lines were all rejected single commands, every setting must be as before.
2. "A rejected command never changes a setting": setting commands with hostile values, each
   followed by a full snapshot of every setting of the four leads and the instrument.
3. Every byte value inside a command line (the firmware must answer -102).
4. Command storms: random valid and invalid commands back to back on four running leads
   with locked (tightened) limits, while the waveform is captured: settings stay within
   the limits, the error queue stays bounded, the heap stays stable, and on the wire no
   phase breaks the charge limit, both pins of a lead are never high together, charge is
   balanced, and pulse spacing and duty keep to the limits.
5. Power cut at every flash block write of a `*SAV`: the previous preset is intact (or the
   new one complete), the filesystem mounts.
6. The host vanishing mid-command and the port reopened; input floods.
7. Soak: four leads for a configurable time, every captured pulse checked against its
   settings.
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import serial
from common import (
    ROOT,
    SYS_HZ,
    Table,
    board,
    emit,
    log,
    machine_info,
    md_table,
    parser,
    wait_ready,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from picostim.client import ScpiClient  # noqa: E402

PASSCODE = "bench-%08x" % random.Random().getrandbits(32)
ERR_RE = re.compile(r'(-?\d+),"((?:[^"]|"")*)"')
SIGNAL_BYTES = {0x03, 0x1A, 0x1C}  # interrupt, suspend, quit: see part 3

# --------------------------------------------------------------------------- the link


class Dead(Exception):
    """The board stopped answering."""


class Link:
    """A virtual board with its SCPI client, a tagged probe and recovery counters."""

    def __init__(self, vb: Any, inst: Any) -> None:
        self.vb, self.inst = vb, inst
        self.tag = 0
        self.restarts0 = vb.info()["restarts"]
        self.findings: list[str] = []
        self.locked = False

    def raw(self, data: bytes) -> None:
        self.inst.link.write(data)

    def probe(self, line: bytes, timeout: float = 20.0) -> tuple[list[str], list[tuple[int, str]]]:
        """Send `line` and the probe; return (replies to the line, errors it queued)."""
        self.tag = (self.tag + 1) % 256
        tag = "%d;" % self.tag
        self.raw(line + b"\n*ESE %d;*ESE?;:SYST:ERR:ALL?\n" % self.tag)
        replies = []
        deadline = time.monotonic() + timeout
        link = self.inst.link
        saved, link.timeout = link.timeout, 1.0  # the deadline counts, not one read's wait
        try:
            while True:
                raw = link.readline()
                if raw:
                    text = raw.decode("ascii", "replace").rstrip("\r\n")
                    if text.startswith(tag) and ERR_RE.match(text[len(tag) :]):
                        errs = [(int(c), m) for c, m in ERR_RE.findall(text[len(tag) :])]
                        return replies, [e for e in errs if e[0] != 0]
                    replies.append(text)
                if time.monotonic() > deadline:
                    raise Dead(
                        "no probe answer within %.0f s (replies: %s)" % (timeout, replies[-3:])
                    )
        finally:
            link.timeout = saved

    def probe_many(
        self, lines: list[bytes], timeout: float = 20.0
    ) -> list[tuple[list[str], list[tuple[int, str]]] | None]:
        """Several lines, each followed by its probe, written at once; None where a probe
        did not come back (the board stopped answering)."""
        tags = []
        out = b""
        for line in lines:
            self.tag = (self.tag + 1) % 256
            tags.append("%d;" % self.tag)
            out += line + b"\n*ESE %d;*ESE?;:SYST:ERR:ALL?\n" % self.tag
        self.raw(out)
        results: list[tuple[list[str], list[tuple[int, str]]] | None] = []
        replies: list[str] = []
        deadline = time.monotonic() + timeout
        while len(results) < len(lines):
            raw = self.inst.link.readline()
            if not raw:
                if time.monotonic() > deadline:
                    results += [None] * (len(lines) - len(results))
                    break
                continue
            text = raw.decode("ascii", "replace").rstrip("\r\n")
            for k in range(len(results), len(lines)):
                tag = tags[k]
                if text.startswith(tag) and ERR_RE.match(text[len(tag) :]):
                    results += [None] * (k - len(results))  # probes that never came
                    errs = [(int(c), m) for c, m in ERR_RE.findall(text[len(tag) :])]
                    results.append((replies, [e for e in errs if e[0] != 0]))
                    replies = []
                    deadline = time.monotonic() + timeout
                    break
            else:
                replies.append(text)
        return results

    def query(self, q: str) -> str:
        self.inst.link.reset_input_buffer()
        return str(self.inst.query(q))

    def restarted(self) -> int:
        return int(self.vb.info()["restarts"]) - self.restarts0

    def recover(self) -> None:
        """Bring a board that stopped answering back (power cycle), keeping the counts."""
        try:
            self.inst.link.write(b"\n")
            wait_ready(self.inst, 5)
            return
        except Exception:
            pass
        self.vb.power_cycle()
        wait_ready(self.inst, 60)

    def snapshot(self) -> dict[str, str]:
        out = {}
        for ch in range(1, 5):
            out["lead%d" % ch] = self.query(
                f"SOUR{ch}:PULS:CYCL?;:SOUR{ch}:BURS:COUN?;PER?;:SOUR{ch}:TRA:DUR?;:SOUR{ch}:DEL?;"
                f":SOUR{ch}:CURR?;:SOUR{ch}:PULS:SHAP?;POL?;:SOUR{ch}:LIST?;:SOUR{ch}:LIST:COUN?;"
                f":SOUR{ch}:RAMP?;:OUTP{ch}?"
            )
        out["global"] = self.query(
            "OUTP:GLOB?;:OUTP:SYNC?;:OUTP:SYNC:SOUR?;:OUTP:SYNC:MODE?;:TRIG:SOUR?;:TRIG:MODE?;"
            ":SYST:LIM:CURR?;:SYST:LIM:FREQ?;:SYST:LIM:DUTY?;:SYST:LIM:SHAN?;:SYST:LIM:AREA?;"
            ":SYST:LIM:CHAR?;:SYST:HEAR?;:SYST:SESS:LIM?;:SYST:LOCK?;*SRE?"
        )
        out["faults"] = self.query("SYST:FAUL?")
        return out


def same_settings(a: dict[str, str], b: dict[str, str]) -> bool:
    """Equal snapshots; a fault latched in between may have turned the output off."""
    if a == b:
        return True
    if a["faults"] != b["faults"]:
        ga, gb = a["global"].split(";", 1), b["global"].split(";", 1)
        return ga[1] == gb[1] and {k: v for k, v in a.items() if k.startswith("lead")} == {
            k: v for k, v in b.items() if k.startswith("lead")
        }
    return False


def internal(code: int, msg: str) -> bool:
    """An error the firmware did not mean to give: -200 (an exception it did not expect) or
    -225 for want of heap. -225 for record memory is a refusal like -221, so it is not."""
    return code == -200 or (code == -225 and "record memory" not in msg)


def tighten_and_lock(link: Link) -> None:
    """Limits that keep the virtual board within real time, locked so no line changes them."""
    if link.locked:
        return
    link.locked = True
    for cmd in (
        "SYST:LIM:FREQ 200",
        "SYST:LIM:CURR 3mA",
        "SYST:LIM:DUTY 20",
        "SYST:LIM:CHAR 0.5uC",
    ):
        link.inst.command(cmd)
    link.inst.command('SYST:LOCK "%s"' % PASSCODE)


def health(link: Link) -> dict[str, Any]:
    """Can the instrument still do its job: start four DRG leads and pulse?"""
    inst = link.inst
    out: dict[str, Any] = {"free": int(link.query("SYST:MEM:FREE?"))}
    inst.write("*RST;*CLS")
    for ch in range(1, 5):
        inst.write("SOUR%d:PULS:WIDT 200us;GAP 50us;:SOUR%d:FREQ 20;:OUTP%d ON" % (ch, ch, ch))
    inst.write("OUTP:GLOB ON")
    out["errors"] = link.query("SYST:ERR:ALL?")
    # Leads stopped by the *RST start once the last long pulse of what came before has
    # ended and the limits' quiet time has passed (a 1 s pulse at a 20 % duty limit: 10 s):
    # look for up to 15 s.
    seen: set[int] = set()
    for _ in range(50):
        wf = link.vb.capture(0.3)
        seen |= {ch for ch in range(1, 5) if wf.pulses("ch%d_a" % ch)}
        if len(seen) == 4:
            break
    out["leads pulsing"] = len(seen)
    inst.write("*RST;*CLS")
    link.query("*OPC?")
    out["ok"] = out["leads pulsing"] == 4 and out["errors"].startswith("0,")
    return out


# --------------------------------------------------------------------------- strategies

HEADERS = [
    "SOUR{n}:PULS:WIDT",
    "SOUR{n}:PULS:GAP",
    "SOUR{n}:PULS:PER",
    "SOUR{n}:PULS:SHAP",
    "SOUR{n}:PULS:POL",
    "SOUR{n}:PULS:CYCL",
    "SOUR{n}:FREQ",
    "SOUR{n}:BURS:COUN",
    "SOUR{n}:BURS:PER",
    "SOUR{n}:TRA:DUR",
    "SOUR{n}:DEL",
    "SOUR{n}:CURR",
    "SOUR{n}:RAMP",
    "SOUR{n}:LIST:PULS",
    "SOUR{n}:LIST",
    "SOUR{n}:LIST:COUN",
    "SOURce{n}:PULSe:WIDTh",
    "source{n}:frequency",
    "OUTP{n}",
    "OUTP{n}:STAT",
    "OUTP:GLOB",
    "OUTP:SYNC",
    "OUTP:SYNC:SOUR",
    "OUTP:SYNC:MODE",
    "TRIG:SOUR",
    "TRIG:MODE",
    "SYST:ERR",
    "SYST:ERR:COUN",
    "SYST:ERR:ALL",
    "SYST:INT",
    "SYST:FAUL",
    "SYST:FAUL:CLE",
    "SYST:HEAR",
    "SYST:LIM:CURR",
    "SYST:LIM:FREQ",
    "SYST:LIM:DUTY",
    "SYST:LIM:SHAN",
    "SYST:LIM:AREA",
    "SYST:LIM:CHAR",
    "SYST:LOCK",
    "SYST:SESS:LIM",
    "SYST:SESS:REM",
    "SYST:LOG",
    "SYST:RES:CAUS",
    "SYST:MEM:FREE",
    "SYST:VERS",
    "*IDN",
    "*RST",
    "*CLS",
    "*OPC",
    "*ESR",
    "*SRE",
    "*STB",
    "*TST",
    "*WAI",
    "*TRG",
    "*SAV",
    "*RCL",
]
HOSTILE = [
    "NaN",
    "nan",
    "INF",
    "-INF",
    "Infinity",
    "NINF",
    "+INF",
    "1e999",
    "1e-999",
    "9" * 40,
    "0." + "0" * 40 + "1",
    "1" + "0" * 31,
    "1e30",
    "-1e30",
    "1e31",
    "1e-31",
    "99999e9999",
    "1e99999",
    "1e",
    "1e+",
    "--1",
    "+-1",
    "1.2.3",
    ".",
    "-",
    "+",
    "e5",
    "0x10",
    "1_000",
    "#H1F",
    "'1'",
    '"1"',
    '"',
    "'",
    "()",
    "1,2,3,4,5,6,7,8,9",
    ",",
    ",,",
    "MIN",
    "MAX",
    "DEF",
    "MINIMUM",
    "maximum",
    "ON",
    "OFF",
    "-0",
    "0",
    "-1",
    "4294967296",
    "18446744073709551617",
]
UNITS = [
    "",
    "s",
    "ms",
    "us",
    "ns",
    "ps",
    "Hz",
    "kHz",
    "MHz",
    "mHz",
    "A",
    "mA",
    "uA",
    "V",
    "C",
    "uC",
    "ohm",
    "S",
    "MS",
    "MA",
    "EX",
    "xyz",
    "sHz",
    "%",
    "\u00b5s",
]
NUMBERS = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(HOSTILE),
)
VALUES = st.one_of(
    st.tuples(NUMBERS, st.sampled_from(UNITS), st.sampled_from(["", " "])).map(
        lambda t: t[0] + t[2] + t[1]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    st.sampled_from(HOSTILE),
)


SUFFIXES = ["", "1", "2", "4", "0", "5", "99", "1234567890"]
HEAD = st.sampled_from([h.format(n=n) for h in HEADERS for n in SUFFIXES if "{n}" in h or n == ""])


@st.composite
def command(draw: Any) -> str:
    """A command from the instrument's own headers, with hostile or random parameters."""
    head = draw(HEAD)
    mode = draw(st.integers(0, 15))
    if mode == 0:
        head = head.lower()
    elif mode == 1:
        mask = draw(st.integers(0, 2**32 - 1))
        head = "".join(c.lower() if mask >> (i % 32) & 1 else c for i, c in enumerate(head))
    elif mode == 2 and not head.startswith("*"):
        head = ":" + head
    if mode in (3, 4, 5):
        return head + "?"
    k = draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))
    args = [draw(VALUES) for _ in range(k)]
    return head + (" " + ",".join(args) if args else "")


@st.composite
def mutated(draw: Any) -> bytes:
    text = draw(command()).encode()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.integers(0, 2))
        if op == 0:
            text = text[:i] + text[i + 1 :]
        elif op == 1:
            text = text[:i] + bytes([draw(st.integers(32, 126))]) + text[i:]
        else:
            text = text[:i] + text[i:][::-1]
    return text


def no_signal(b: bytes) -> bytes:
    return bytes(x for x in b if x not in SIGNAL_BYTES)


LINES = st.one_of(
    command().map(str.encode),
    command().map(str.encode),
    st.lists(command(), min_size=2, max_size=6).map(lambda c: ";".join(c).encode()),
    mutated(),
    st.binary(min_size=1, max_size=300).map(no_signal),
    st.text(max_size=60).map(lambda t: no_signal(t.encode("utf-8", "surrogatepass"))),
    st.tuples(command(), st.integers(257, 3000)).map(lambda t: (t[0] + " " + "9" * t[1]).encode()),
    st.tuples(command(), st.sampled_from([0, 1, 2, 4, 7, 8, 9, 11, 12, 27, 127, 128, 255])).map(
        lambda t: t[0].encode()[:5] + bytes([t[1]]) + t[0].encode()[5:]
    ),
    st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=20).map(
        lambda t: ("SOUR1:PULS:WIDT " + t).encode("utf-8", "surrogatepass")
    ),
)


def checkable(line: bytes) -> bool:
    """A line the board takes whole or not at all: one command, one line."""
    return b";" not in line and b"\n" not in line


# --------------------------------------------------------------------------- part 1: fuzz


def fuzz(link: Link, n_lines: int, batch: int, seed: int) -> dict[str, Any]:
    """Hypothesis generates batches of lines in this thread while a worker plays the
    previous batch on the board (generation and the board's work overlap)."""
    res: dict[str, Any] = {
        "lines": 0,
        "answered": 0,
        "rejected": 0,
        "accepted": 0,
        "internal": [],
        "dead": [],
        "restarts": 0,
        "changed": [],
        "checked_unchanged": 0,
        "query_replies": 0,
        "by_code": {},
    }
    ref = [link.snapshot()]
    began = time.monotonic()
    work: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=4)

    def play(lines: list[bytes]) -> None:
        all_rejected = True
        restarts = link.restarted()
        results: list[Any] = []
        for k in range(0, len(lines), 5):
            results += link.probe_many(lines[k : k + 5])
        for line, result in zip(lines, results, strict=True):
            res["lines"] += 1
            if result is None:
                res["dead"].append((line, "no probe answer within 20 s"))
                all_rejected = False
                continue
            replies, errs = result
            res["answered"] += 1
            res["query_replies"] += len(replies)
            for code, msg in errs:
                res["by_code"][code] = res["by_code"].get(code, 0) + 1
                if internal(code, msg):
                    res["internal"].append((line, msg))
            if errs:
                res["rejected"] += 1
                if not checkable(line):
                    all_rejected = False
            else:
                res["accepted"] += 1
                all_rejected = False
        if None in results:
            link.recover()
            ref[0] = link.snapshot()
            return
        if link.restarted() != restarts:
            res["restarts"] += link.restarted() - restarts
            res["dead"].append((lines[-1], "the board restarted during this batch"))
        snap = link.snapshot()
        if all_rejected:
            if same_settings(ref[0], snap):
                res["checked_unchanged"] += len(lines)
            else:
                res["changed"].append((lines, ref[0], snap))
        ref[0] = snap
        if res["lines"] % (batch * 80) == 0:
            log(
                "fuzz: %d lines, %d rejected, %.0f lines/s"
                % (res["lines"], res["rejected"], res["lines"] / (time.monotonic() - began))
            )

    def worker() -> None:
        while True:
            lines = work.get()
            if lines is None:
                return
            try:
                play(lines)
            except Exception as exc:  # counted: the campaign goes on
                res["dead"].append((lines[-1], "%s: %s" % (type(exc).__name__, exc)))
                try:
                    link.recover()
                    ref[0] = link.snapshot()
                except Exception:
                    pass

    th = threading.Thread(target=worker, daemon=True)
    th.start()

    @settings(
        max_examples=max(1, n_lines // batch),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(LINES, min_size=batch, max_size=batch))
    def run(lines: list[bytes]) -> None:
        work.put(lines)

    try:
        run()
    finally:
        work.put(None)
        th.join()
    res["seconds"] = time.monotonic() - began
    return res


# --------------------------------------------------------------------------- part 2: rejects


@st.composite
def hostile_setting(draw: Any) -> bytes:
    head = draw(
        st.sampled_from([h for h in HEADERS if not h.startswith(("*", "SYST:ERR", "SYST:LOG"))])
    )
    head = head.format(n=draw(st.sampled_from(["1", "2", "3", "4", "5", "0"])))
    value = draw(st.one_of(VALUES, st.sampled_from(HOSTILE)))
    return ("%s %s" % (head, value)).encode()


def rejects(link: Link, n_lines: int) -> dict[str, Any]:
    res: dict[str, Any] = {"lines": 0, "rejected": 0, "accepted": 0, "changed": [], "internal": []}
    ref = [link.snapshot()]

    @settings(
        max_examples=n_lines,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_setting())
    def run(line: bytes) -> None:
        res["lines"] += 1
        _replies, errs = link.probe(line)
        snap = link.snapshot()
        if errs:
            res["rejected"] += 1
            if not same_settings(ref[0], snap):
                diff = {k: (ref[0][k], snap[k]) for k in snap if snap[k] != ref[0][k]}
                res["changed"].append((line, errs, diff))
        else:
            res["accepted"] += 1
        for code, msg in errs:
            if internal(code, msg):
                res["internal"].append((line, msg))
        ref[0] = snap

    run()
    return res


# --------------------------------------------------------------------------- part 3: bytes


def every_byte(link: Link, quick: bool) -> dict[str, Any]:
    """Each byte value that is not printable ASCII inside `SOUR1:PULS:WIDT 1?00us`: the
    firmware rejects the line (-102; TAB is whitespace, so a syntax error too) and the width
    stays; the bytes the pseudo-terminal turns into signals are tried last."""
    res: dict[str, Any] = {"tried": 0, "ok": 0, "bad": []}
    link.inst.link.timeout = 5  # a reply lost to a signal byte costs 5 s, not a minute
    link.inst.command("*RST")
    order = [b for b in range(256) if (b < 32 or b > 126) and b not in (10, 13)]
    order = [b for b in order if b not in SIGNAL_BYTES]
    if quick:
        order = [0x00, 0x07, 0x09, 0x1B, 0x7F, 0x80, 0xC3, 0xFF]
    else:
        order += sorted(SIGNAL_BYTES - {0x03})
    for b in order:
        res["tried"] += 1
        t_byte = time.monotonic()
        line = b"SOUR1:PULS:WIDT 1" + bytes([b]) + b"00us"
        restarts = link.restarted()
        try:
            _r, errs = link.probe(line, timeout=3)
            width = link.query("SOUR1:PULS:WIDT?")
            what = []
            if not errs or any(c != -102 for c, _ in errs):
                what.append("errors %s" % errs)
            if width != "2.000000E-04":
                what.append("width became %s" % width)
            if link.restarted() != restarts:
                what.append(
                    "the board restarted (restarts %d -> %d)" % (restarts, link.restarted())
                )
        except Dead as exc:
            what = [str(exc)]
            link.recover()
        if time.monotonic() - t_byte > 1:
            log("  byte 0x%02x took %.1f s" % (b, time.monotonic() - t_byte))
        if what:
            res["bad"].append((b, "; ".join(what)))
            link.inst.write("*RST;*CLS")
            link.query("*OPC?")
        else:
            res["ok"] += 1
    link.inst.link.timeout = 60
    if quick:
        return res
    # 0x03 (Ctrl-C) last: by design it interrupts main.py (mpremote needs it).
    res["tried"] += 1
    link.inst.write("*RST;*CLS;:SOUR1:FREQ 100;:OUTP1 ON;:OUTP:GLOB ON")
    res["ctrl_c_start"] = link.query("SYST:ERR:ALL?")
    link.raw(b"SOUR1:PULS:WIDT 1\x0300us\n")
    time.sleep(0.5)
    link.inst.link.reset_input_buffer()
    link.raw(b"*IDN?\n")
    reply = link.inst.link.readline()
    levels = link.vb.levels()
    from picostim.pinmap import PINS

    at_rest = all(levels[p] == 0 for p in PINS["LEAD_A"] + PINS["LEAD_B"])
    res["ctrl_c"] = {"idn": reply.decode("ascii", "replace").strip(), "at_rest": at_rest}
    link.vb.power_cycle()
    wait_ready(link.inst, 60)
    link.inst.link.timeout = 60
    link.restarts0 = link.vb.info()["restarts"]
    return res


# --------------------------------------------------------------------------- part 4: storms


def storm_line(rng: random.Random) -> str:
    n = rng.choice([1, 2, 3, 4, 4, 0, 5]) if rng.random() < 0.05 else rng.randint(1, 4)
    s = "SOUR%d:" % n
    r = rng.random()
    num = rng.choice
    if r < 0.12:
        return s + "PULS:WIDT %s" % num(
            ["%dus" % rng.randint(1, 3000), "0", "-5us", "2s", "NaN", "abc", "200Hz", "MAX", "MIN"]
        )
    if r < 0.2:
        return s + "PULS:GAP %s" % num(["%dus" % rng.randint(0, 500), "0", "1s", "INF", "-1"])
    if r < 0.32:
        return s + "FREQ %s" % num(
            [
                "%d" % rng.randint(1, 400),
                "%gHz" % rng.uniform(0.5, 300),
                "10kHz",
                "1MHz",
                "0",
                "-3",
                "MAX",
                "MIN",
                "5s",
            ]
        )
    if r < 0.36:
        return s + "PULS:PER %s" % num(["%dms" % rng.randint(1, 2000), "1us", "2h", "DEF"])
    if r < 0.46:
        return s + "CURR %s" % num(
            [
                "%gmA" % rng.uniform(0, 4),
                "%duA" % rng.randint(0, 7000),
                "7mA",
                "-1mA",
                "MAX",
                "0",
                "1A",
                "3V",
            ]
        )
    if r < 0.5:
        return s + "PULS:SHAP %s" % num(["BIPH", "MON", "TRI", "biphasic", "mon"])
    if r < 0.53:
        return s + "PULS:POL %s" % num(["NORM", "INV", "UP"])
    if r < 0.58:
        return s + "BURS:COUN %d;:%sBURS:PER %dms" % (rng.randint(1, 12), s, rng.randint(10, 400))
    if r < 0.6:
        return s + "TRA:DUR %s" % num(["0", "%dms" % rng.randint(1, 2000), "1e6"])
    if r < 0.62:
        return s + "DEL %s" % num(["0", "%dus" % rng.randint(8, 5000), "31s"])
    if r < 0.64:
        return s + "RAMP %s" % num(["0", "%dms" % rng.randint(0, 3000)])
    if r < 0.66:
        on = rng.randint(0, 20)
        return s + "LIST:PULS %dms,%dus,%dms,%dus" % (
            on,
            rng.randint(10, 900),
            on + rng.randint(2, 40),
            rng.randint(10, 900),
        )
    if r < 0.68:
        return s + "LIST %s" % num(["ON", "OFF", "OFF"])
    if r < 0.76:
        return "OUTP%d %s" % (n, num(["ON", "ON", "OFF", "2"]))
    if r < 0.84:
        return "OUTP:GLOB %s" % num(["ON", "ON", "ON", "OFF"])
    if r < 0.88:
        return "SYST:LIM:%s %s" % (
            num(["CURR", "FREQ", "DUTY", "CHAR", "SHAN"]),
            num(["1", "1e9", "6mA", "50"]),
        )
    if r < 0.92:
        return num(
            [
                "SYST:ERR?",
                "SYST:ERR:COUN?",
                "*IDN?",
                "SOUR1:PULS:CYCL?",
                "SYST:FAUL?",
                "OUTP:GLOB?",
                "*OPC?",
                "SOUR2:CURR?",
            ]
        )
    if r < 0.93:
        return "SYST:FAUL:CLE"
    if r < 0.935:
        return "*RST"
    if r < 0.95:
        return "*CLS"
    return num(
        [
            "BOGUS",
            "SOUR1:PULS",
            "OUTP:GLOB ON;SOUR9:FREQ 1",
            ":::",
            "SOUR1:PULS:WIDT 100us;GAP 20us;:OUTP1 ON",
            "*IDN",
            "SYST:ERR:ALL",
        ]
    )


def settings_within_limits(link: Link, lim: dict[str, float]) -> list[str]:
    """Every lead's settings against the limits in force (checked host-side)."""
    bad = []
    for ch in range(1, 5):
        w, g, p = (int(x) for x in link.query("SOUR%d:PULS:CYCL?" % ch).split(","))
        shape = link.query("SOUR%d:PULS:SHAP?" % ch)
        amps = float(link.query("SOUR%d:CURR?" % ch))
        if link.query("SOUR%d:LIST?" % ch) == "1":
            continue  # list mode: each table pulse is judged with its own spacing
        active = w if shape == "MON" else 2 * w
        if p < SYS_HZ / lim["freq"] - 1e-9:
            bad.append("lead %d: period %d below the frequency limit" % (ch, p))
        if active > lim["duty"] * p + 1e-9:
            bad.append("lead %d: duty %.3f over the limit" % (ch, active / p))
        if amps > lim["amps"] + 1e-12:
            bad.append("lead %d: current %g A over the limit" % (ch, amps))
        if amps * w / SYS_HZ > lim["charge"] + 1e-15:
            bad.append("lead %d: charge %g C per phase over the limit" % (ch, amps * w / SYS_HZ))
    return bad


def current_at(points: list[tuple[int, float]], c: int) -> float:
    level = 0.0
    for t, a in points:
        if t > c:
            break
        level = a
    return level


def check_wire(wf: Any, lim: dict[str, float]) -> dict[str, Any]:
    """Limits on the wire in one capture, per lead."""
    out: dict[str, Any] = {
        "phases": 0,
        "both_high": 0,
        "over_charge": 0,
        "unbalanced": 0,
        "current_moved": 0,
        "close_starts": [],
        "over_duty": 0,
        "examples": [],
    }
    min_period = SYS_HZ / lim["freq"]
    for ch in range(1, 5):
        a, b = wf.pulses("ch%d_a" % ch), wf.pulses("ch%d_b" % ch)
        cur = [(t - wf.t0, x) for t, x in wf.currents.get("ch%d_current" % ch, [])]
        phases = sorted([(r, f, "a") for r, f in a] + [(r, f, "b") for r, f in b])
        out["phases"] += len(phases)
        for ra, fa in a:
            for rb, fb in b:
                if rb < fa and ra < fb:
                    out["both_high"] += 1
                    out["examples"].append(
                        "lead %d: A %d-%d and B %d-%d overlap" % (ch, ra, fa, rb, fb)
                    )
        charges = []
        for r, f, _pin in phases:
            inside = [x for t, x in cur if r < t < f]
            amps = current_at(cur, r)
            if inside:
                out["current_moved"] += 1
                out["examples"].append("lead %d: current changed during a phase at %d" % (ch, r))
            q = amps * (f - r) / SYS_HZ
            charges.append(q)
            if q > lim["charge"] * (1 + 1e-9):
                out["over_charge"] += 1
                out["examples"].append("lead %d: %.3g C in one phase at %d" % (ch, q, r))
        for i, (r, f, pin) in enumerate(phases):
            if charges[i] <= 0 or r < 50_000 or f > wf.cycles - 50_000 - 2 * SYS_HZ // 1000:
                continue
            ok = False
            for j in (i - 1, i + 1):
                if (
                    0 <= j < len(phases)
                    and phases[j][2] != pin
                    and abs(charges[j] - charges[i]) < 1e-15
                ):
                    ok = True
            if not ok:
                out["unbalanced"] += 1
                out["examples"].append("lead %d: unbalanced phase at %d" % (ch, r))
        # spacing and duty, per pin: a pulse start repeats at most once per minimum period
        for pulses in (a, b):
            for (r1, _f1), (r2, _f2) in zip(pulses, pulses[1:], strict=False):
                if r2 - r1 < min_period - 1:
                    out["close_starts"].append((ch, r2 - r1))
    return out


def storm(link: Link, size: int, seed: int, window: float) -> dict[str, Any]:
    rng = random.Random(seed)
    lim = {"freq": 200.0, "amps": 3e-3, "duty": 0.20, "charge": 0.5e-6}
    res: dict[str, Any] = {
        "commands": 0,
        "lost": 0,
        "max_queue": 0,
        "mem": [],
        "limit_breaks": [],
        "captures": 0,
        "wire": {},
        "internal": [],
        "restarts0": link.restarted(),
    }
    link.inst.write("*RST;*CLS")
    link.query("*OPC?")
    for ch in range(1, 5):
        link.inst.command(
            "SOUR%d:PULS:WIDT 100us;GAP 20us;:SOUR%d:FREQ %d;:OUTP%d ON"
            % (ch, ch, 20 + 10 * ch, ch)
        )
        link.inst.command("SOUR%d:RAMP 0" % ch)
    link.inst.write("OUTP:GLOB ON")
    res["start"] = link.query("SYST:ERR:ALL?")
    stop = threading.Event()
    wire: dict[str, Any] = {}
    waves = [0]

    def capturer() -> None:
        while not stop.is_set():
            try:
                wf = link.vb.capture(window)
            except Exception as exc:  # the board went away: reported by the main thread
                wire.setdefault("examples", []).append("capture failed: %s" % exc)
                return
            waves[0] += 1
            for k, v in check_wire(wf, lim).items():
                if isinstance(v, list):
                    wire.setdefault(k, []).extend(v)
                else:
                    wire[k] = wire.get(k, 0) + v

    th = threading.Thread(target=capturer, daemon=True)
    th.start()
    chunk = 25
    t0 = time.monotonic()
    for i in range(0, size, chunk):
        lines = [storm_line(rng) for _ in range(min(chunk, size - i))]
        try:
            _replies, errs = link.probe("\n".join(lines).encode())
        except Dead as exc:
            res["internal"].append(("(storm)", str(exc)))
            link.recover()
            continue
        res["commands"] += len(lines)
        for code, msg in errs:
            if internal(code, msg):
                res["internal"].append(("in a chunk of %s" % lines, msg))
        # bounded queue: the probe read it all; so check the count with a full chunk queued
        if i % 500 == 0:
            # A full chunk of commands queued, then the count: the queue must stay bounded.
            more = "\n".join(storm_line(rng) for _ in range(40)) + "\nSYST:ERR:COUN?"
            try:
                replies, _errs = link.probe(more.encode())
                res["commands"] += 40
                res["max_queue"] = max(res["max_queue"], int(replies[-1]))
                res["mem"].append(int(link.probe(b"SYST:MEM:FREE?")[0][-1]))
            except Dead as exc:
                res["internal"].append(("(storm, full queue)", str(exc)))
                link.recover()
        if i % 2000 == 0:
            res["limit_breaks"] += settings_within_limits(link, lim)
            if link.query("OUTP:GLOB?") == "0":
                link.inst.write("SYST:FAUL:CLE;:OUTP:GLOB ON")
    stop.set()
    th.join()
    res["seconds"] = time.monotonic() - t0
    res["limit_breaks"] += settings_within_limits(link, lim)
    res["captures"] = waves[0]
    res["wire"] = wire
    res["restarts"] = link.restarted() - res["restarts0"]
    link.inst.write("*RST;*CLS")
    link.query("*OPC?")
    return res


# --------------------------------------------------------------------------- part 5: power cuts


def power_cuts(link: Link, quick: bool) -> dict[str, Any]:
    vb, inst = link.vb, link.inst
    res: dict[str, Any] = {"writes": 0, "rows": [], "bad": []}

    def width() -> str:
        return link.query("SOUR1:PULS:WIDT?")

    inst.write("*RST;*CLS")
    inst.command("SOUR1:PULS:WIDT 111us")
    inst.command("*SAV 3")
    previous = width()
    inst.command("SOUR1:PULS:WIDT 112us")
    w0 = vb.flash_writes()
    inst.command("*SAV 4")
    res["writes"] = writes = vb.flash_writes() - w0
    # A *SAV may take a write more or less than this one (the filesystem's own metadata):
    # the full run cuts at k = 1, 2, ... until a *SAV completes without reaching write k.
    ks = [1, writes, writes + 1] if quick else range(1, 4 * writes + 8)
    for k in ks:
        new = "%dus" % (120 + k)
        inst.write("*RST;*CLS")
        inst.command("SOUR1:PULS:WIDT %s" % new)
        new_text = width()
        cuts = vb.power_cuts()
        vb.cut_power_at_write(k)
        inst.write("*SAV 3")
        deadline = time.monotonic() + 10
        while vb.power_cuts() == cuts and time.monotonic() < deadline:
            time.sleep(0.02)
        cut = vb.power_cuts() > cuts
        vb.cut_power_at_write(None)
        if cut:
            wait_ready(inst, 60)
        inst.link.reset_input_buffer()
        inst.write("*CLS;*RCL 3")
        errs = inst.errors()
        got = width()
        log_ok = link.query("SYST:LOG?").startswith('"')
        cause = link.query("SYST:RES:CAUS?")
        if errs:
            outcome = "errors %s" % errs
        elif got == previous:
            outcome = "previous preset intact"
        elif got == new_text:
            outcome = "new preset complete"
        else:
            outcome = "neither: %s" % got
        res["rows"].append(
            (k, "cut" if cut else "no cut (write %d did not come)" % k, outcome, log_ok, cause)
        )
        if errs or got not in (previous, new_text) or not log_ok:
            res["bad"].append((k, outcome))
        if got == new_text:
            previous = new_text
        if not cut and not quick:
            break  # the control: this *SAV had fewer than k writes
    res["cuts"] = sum(1 for row in res["rows"] if row[1] == "cut")
    if not quick and res["cuts"] == len(res["rows"]):
        res["bad"].append((len(res["rows"]), "no *SAV ended before the last cut tried"))
    link.restarts0 = vb.info()["restarts"]
    return res


# --------------------------------------------------------------------------- part 6: host


def host_vanishing(
    link: Link, tries: int, rng: random.Random, junk: int, n: int
) -> dict[str, Any]:
    port = link.vb.port
    res: dict[str, Any] = {
        "tries": 0,
        "answered_first": 0,
        "answered_after_newline": 0,
        "bare_at_once": 0,
        "stale_reply": 0,
        "restarts": 0,
        "first_replies": [],
    }
    r0 = link.restarted()
    link.inst.close()
    for i in range(tries):
        res["tries"] += 1
        cmd = rng.choice(
            ["SOUR1:PULS:WIDT 123us", "SOUR2:FREQ 50", "*IDN?", "SYST:ERR:ALL?", "OUTP1 ON"]
        )
        cut = rng.randint(1, len(cmd))
        with serial.Serial(port, timeout=2) as s:
            s.write(cmd[:cut].encode() + (b"\n" if cut == len(cmd) and i % 2 else b""))
        time.sleep(0.02)
        if i % 2:
            # A new host with PicoStim's client (picostim, the Python API), which ends any
            # half line with a newline as it opens the port.
            with ScpiClient(port, timeout=0.5) as c:
                c.link.timeout = 0.5
                c.write("*IDN?")
                first = c.link.readline().decode("ascii", "replace").strip()
        else:
            # A bare serial host, as a user's own script would open it, a second later: the
            # firmware drops a half line its host left that long ago.
            time.sleep(1.1)
            with serial.Serial(port, timeout=0.5) as s:
                s.write(b"*IDN?\n")
                first = s.readline().decode("ascii", "replace").strip()
        if first.startswith("PicoStim,"):
            res["answered_first"] += 1
        elif first:
            res["stale_reply"] += 1
        if not first.startswith("PicoStim,") and len(res["first_replies"]) < 3:
            res["first_replies"].append(first)
        # Within that second a bare host's first line is glued to the half line: a known
        # limit (the PicoStim client's newline avoids it), measured, not counted as lost.
        with serial.Serial(port, timeout=2) as s:
            s.write(cmd[:cut].encode())
        time.sleep(0.02)
        with serial.Serial(port, timeout=0.5) as s:
            s.write(b"*IDN?\n")
            if s.readline().startswith(b"PicoStim,"):
                res["bare_at_once"] += 1
            s.write(b"\n*CLS;*IDN?\n")
            for _ in range(3):
                line = s.readline()
                if line.startswith(b"PicoStim,"):
                    res["answered_after_newline"] += 1
                    break
                if not line:
                    break
    link.inst = ScpiClient(port, timeout=60)
    wait_ready(link.inst)
    res["restarts"] = link.restarted() - r0
    # ---- floods (every write time-limited: a stalled board is a finding, not a hang)
    fl: dict[str, Any] = {"stalled": []}
    res["flood"] = fl
    inst = link.inst
    inst.link.timeout = 10
    t = time.monotonic()
    if not timed_write(link, bytes(rng.randint(33, 126) for _ in range(junk)) + b"\n", 120):
        fl["stalled"].append("%d bytes of junk" % junk)
        return res
    fl["junk"] = junk
    fl["junk_errors"] = inst.query("SYST:ERR:ALL?")
    fl["junk_seconds"] = time.monotonic() - t
    t = time.monotonic()
    if not timed_write(link, b"*IDN?\n" * 2_000, 60):  # replies nobody reads
        fl["stalled"].append("2000 unread *IDN?")
        return res
    time.sleep(1)
    inst.link.reset_input_buffer()
    fl["unread_answered"] = wait_ready(inst, 60).startswith("PicoStim,")
    fl["unread_seconds"] = time.monotonic() - t
    t = time.monotonic()
    got: list[str] = []

    def reader() -> None:
        numeric = 0
        while numeric < n:
            try:
                line = inst.read_line()
            except Exception:
                return
            got.append(line)
            numeric += line.isdigit()

    time.sleep(0.5)
    inst.link.reset_input_buffer()  # what is left of the unread replies
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    lines = [b"*ESE %d;*ESE?\n" % (k % 256) for k in range(n)]
    if not timed_write(link, b"".join(lines), 120, chunk=1400):
        fl["stalled"].append("%d tagged lines, replies read" % n)
    th.join(30)
    fl["tagged"] = n
    matched = 0
    for r in got:  # in order; a stale line left from before is skipped
        if r == str(matched % 256):
            matched += 1
    fl["tagged_lost"] = n - matched
    fl["tagged_seconds"] = time.monotonic() - t
    fl["restarts"] = link.restarted() - r0
    inst.link.timeout = 60
    if not fl["stalled"]:
        fl["cause"] = link.query("SYST:RES:CAUS?")
    return res


def timed_write(link: Link, data: bytes, limit: float, chunk: int = 1 << 16) -> bool:
    """Write `data` to the board from a thread; False if it is not all taken within `limit`."""
    done = threading.Event()

    def writer() -> None:
        try:
            for k in range(0, len(data), chunk):
                link.inst.link.write(data[k : k + chunk])
        except Exception:
            pass
        finally:
            done.set()

    threading.Thread(target=writer, daemon=True).start()
    return done.wait(limit)


def unread_flood(link: Link, n: int, limit: float) -> dict[str, Any]:
    """n `*IDN?` written by a host that reads nothing; does the board take them all?"""
    done = threading.Event()

    def writer() -> None:
        try:
            link.inst.link.write(b"*IDN?\n" * n)
        finally:
            done.set()

    t = time.monotonic()
    threading.Thread(target=writer, daemon=True).start()
    done.wait(limit)
    out: dict[str, Any] = {"n": n, "written": done.is_set(), "seconds": time.monotonic() - t}
    info = link.vb.info()
    out["restarts"], out["cause"] = link.restarted(), info["reset_cause"]
    if done.is_set():
        time.sleep(1)
        try:
            out["answered"] = wait_ready(link.inst, 30).startswith("PicoStim,")
        except Exception:
            out["answered"] = False
    else:
        out["answered"] = False
    return out


# --------------------------------------------------------------------------- part 7: soak

SOAK = [
    # (commands, width, gap, period, burst count, burst period, phase-1 pin)
    ("SOUR1:PULS:WIDT 200us;GAP 50us;:SOUR1:FREQ 20", 25_000, 6_250, 6_250_000, 1, 0, "a"),
    (
        "SOUR2:PULS:WIDT 60us;GAP 0;:SOUR2:FREQ 130;:SOUR2:PULS:POL INV",
        7_500,
        0,
        961_538,
        1,
        0,
        "b",
    ),
    (
        "SOUR3:PULS:WIDT 100us;GAP 20us;:SOUR3:FREQ 100;:SOUR3:BURS:PER 200ms;COUN 5",
        12_500,
        2_500,
        1_250_000,
        5,
        25_000_000,
        "a",
    ),
    ("SOUR4:PULS:WIDT 333.3us;GAP 64ns;:SOUR4:FREQ 7", 41_663, 8, 17_857_143, 1, 0, "a"),
]


def soak(link: Link, seconds: float, window: float) -> dict[str, Any]:
    inst = link.inst
    res: dict[str, Any] = {
        "seconds": seconds,
        "captures": 0,
        "pulses": 0,
        "anomalies": [],
        "restarts0": link.restarted(),
    }
    inst.write("*RST;*CLS")
    link.query("*OPC?")
    for cmd, *_ in SOAK:
        inst.command(cmd)
    for ch in range(1, 5):
        inst.command("OUTP%d ON" % ch)
    inst.command("SYST:HEAR 5s")
    inst.command("OUTP:GLOB ON")
    cycles = {ch: int(link.query("SOUR%d:PULS:CYCL?" % ch).split(",")[2]) for ch in range(1, 5)}
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        wf = link.vb.capture(window)
        res["captures"] += 1
        if link.query("*OPC?") != "1":  # the host keeps talking: the heartbeat stays fed
            res["anomalies"].append("no *OPC? answer")
        for ch, (_c, width, gap, period, count, bper, first) in enumerate(SOAK, 1):
            period = cycles[ch]
            p1 = wf.pulses("ch%d_%s" % (ch, first))
            p2 = wf.pulses("ch%d_%s" % (ch, "b" if first == "a" else "a"))
            res["pulses"] += len(p1)
            for r, f in p1 + p2:
                if f - r != width:
                    res["anomalies"].append("lead %d: phase %d cycles at %d" % (ch, f - r, r))
            rises2 = [r for r, _ in p2]
            for _r, f in p1:
                later = [x for x in rises2 if x >= f]
                if later and later[0] - f != gap:
                    res["anomalies"].append("lead %d: gap %d" % (ch, later[0] - f))
            starts = [r for r, _ in p1]
            inter = bper - (count - 1) * period
            for d in (b - a for a, b in zip(starts, starts[1:], strict=False)):
                if d != period and not (count > 1 and d == inter):
                    res["anomalies"].append("lead %d: spacing %d" % (ch, d))
            if count > 1:
                pass
            for ra, fa in wf.pulses("ch%d_a" % ch):
                for rb, fb in wf.pulses("ch%d_b" % ch):
                    if rb < fa and ra < fb:
                        res["anomalies"].append("lead %d: both pins high" % ch)
    res["restarts"] = link.restarted() - res["restarts0"]
    if res["restarts"]:
        res["anomalies"].append("%d restarts" % res["restarts"])
    inst.write("SYST:HEAR 0;:*RST;*CLS")
    link.query("*OPC?")
    return res


# --------------------------------------------------------------------------- report


def esc(b: bytes) -> str:
    text = repr(b)[2:-1]
    return text if len(text) <= 90 else text[:87] + "..."


def report(
    args: Any, info: dict[str, str], parts: dict[str, Any], wall: float
) -> tuple[str, list[Table]]:
    tables = []
    if parts.get("host"):
        fl = parts["host"].setdefault("flood", {"stalled": []})
        for k, v in (
            ("junk", 0),
            ("junk_errors", ""),
            ("junk_seconds", 0.0),
            ("unread_answered", False),
            ("unread_seconds", 0.0),
            ("tagged", 0),
            ("tagged_lost", 0),
            ("tagged_seconds", 0.0),
            ("restarts", 0),
            ("cause", "?"),
            ("stalled", []),
        ):
            fl.setdefault(k, v)
    t = Table("Campaign summary", ["part", "tried", "survived", "lost", "what 'lost' counts"])
    fz = parts.get("fuzz")
    if fz:
        t.add(
            "1. SCPI fuzzing (hypothesis)",
            "%d lines" % fz["lines"],
            fz["answered"],
            len(fz["dead"]) + len(fz["internal"]) + len(fz["changed"]),
            "lines without an answer, restarts, -200 internal errors or -225 out of heap, batches of rejected lines that changed a setting",
        )
    rj = parts.get("rejects")
    if rj:
        t.add(
            "2. rejected commands vs settings",
            "%d setting lines" % rj["lines"],
            rj["lines"] - len(rj["changed"]),
            len(rj["changed"]),
            "rejected commands (error queued) after which a setting differed",
        )
    eb = parts.get("bytes")
    if eb:
        # 0x03 is Ctrl-C: by design it stops main.py with every output at rest, as mpremote
        # needs to break in; it survives when that is what happened.
        cc = eb.get("ctrl_c")
        cc_ok = 1 if cc and cc.get("at_rest") else 0
        t.add(
            "3. non-printable bytes inside a command",
            "%d byte values" % eb["tried"],
            eb["ok"] + cc_ok,
            len(eb["bad"]) + (1 if cc and not cc_ok else 0),
            "bytes not answered by -102 with the setting kept; 0x03 (Ctrl-C) not stopping "
            "main.py with the outputs at rest",
        )
    for i, s in enumerate(parts.get("storms", []), 1):
        w = s["wire"]
        lost = (
            len(s["internal"])
            + len(s["limit_breaks"])
            + s["restarts"]
            + w.get("both_high", 0)
            + w.get("over_charge", 0)
            + w.get("unbalanced", 0)
            + w.get("current_moved", 0)
        )
        t.add(
            "4. command storm %d" % i,
            "%d commands, %d captures, %d phases"
            % (s["commands"], s["captures"], w.get("phases", 0)),
            "queue <= %d, heap %d..%d" % (s["max_queue"], min(s["mem"]), max(s["mem"])),
            lost,
            "-200s or -225s out of heap, settings over a limit, restarts, phases over the charge limit, unbalanced, both pins high",
        )
    pc = parts.get("power")
    if pc:
        t.add(
            "5. power cut at each flash write of *SAV",
            "%d tries (%d cuts)" % (len(pc["rows"]), pc["cuts"]),
            len(pc["rows"]) - len(pc["bad"]),
            len(pc["bad"]),
            "presets neither previous nor new, filesystem not mounting",
        )
    hv = parts.get("host")
    if hv:
        t.add(
            "6a. host vanishing mid-command, port reopened",
            "%d" % hv["tries"],
            hv["answered_first"],
            hv["tries"] - hv["answered_first"],
            "first *IDN? of the next host (PicoStim's client at once, or a bare serial "
            "host a second later) not answered with the IDN",
        )
        fl = hv["flood"]
        t.add(
            "6b. input floods",
            "%d B junk, 2000 unread *IDN?, %d tagged lines" % (fl["junk"], fl["tagged"]),
            "yes" if fl["unread_answered"] and not fl["restarts"] else "no",
            fl["tagged_lost"],
            "tagged lines lost or wrong",
        )
    so = parts.get("soak")
    if so:
        t.add(
            "7. soak, 4 leads",
            "%.0f s, %d captures, %d pulses checked"
            % (so["seconds"], so["captures"], so["pulses"]),
            so["pulses"],
            len(so["anomalies"]),
            "anomalies: any width, gap or spacing off by a cycle, overlap, restart",
        )
    tables.append(t)

    lines = [
        "# Reliability campaign",
        "",
        "Generated by `bench/reliability.py` (`make reliability`). Everything runs on the "
        "virtual board: the unmodified firmware in the MicroPython unix port with a 192 KiB "
        "heap, its PIO programs executed cycle by cycle. Each part counts what it tried, what "
        "survived and what was lost.",
        "",
        "| | |",
        "| --- | --- |",
    ]
    for k, v in info.items():
        lines.append("| %s | %s |" % (k, v))
    lines.append("| size of this run | %s |" % args.size_text)
    lines.append("| campaign wall time | %.0f s |" % wall)
    lines += ["", md_table(t, "##"), "## Findings", ""]
    lines += findings(parts)
    lines += ["", "## Details", ""]
    lines += details(parts)
    lines += ["", HISTORY]
    return "\n".join(lines) + "\n", tables


HISTORY = """## What earlier runs found, and what was done

Each of these was found by a run of this campaign (or by the tests written from one), fixed,
and is now covered by a test; the run above is on the fixed code.

| found | fixed by |
| --- | --- |
| bursts could beat the frequency and duty-cycle limits | limits checked on the burst's own spacing and on the whole record |
| a quick `OUTP n OFF`/`ON` cut the pulse in flight or started the next one early | a stopped lead stays quiet until its pulse has ended and the limits allow the next |
| `*RST` cut the pulse in flight | `*RST` disarms; each lead completes both phases first |
| the DAC was written between the phases of a pulse | the DAC is written only once the pulse in flight has surely ended |
| a power cycle bought a free passcode guess | the failed-guess count is kept on flash; after a power cycle the last wait starts over |
| watchdog resets were not reported | error 230 "Watchdog reset" after the reboot, in the event log and `SYST:RES:CAUS?` |
| running out of heap aborted a fault trip | the disarm comes first and needs no allocation; the loop's `finally` rests every output |
| `*TRG` re-prepared a running train | a trigger while the train runs is ignored and counted |
| `OUTP:GLOB ON` failed for want of 8 KB of heap, yet reported the output on | the leads' records live in 8 KB of record memory taken at boot; what does not fit gets -225 before anything changes |
| file writes and `SYST:LOG?` failed on a heap worn by hours of commands | a 4 KB reserve lent to file writes and measurements |
| an out-of-heap error raised while reporting another left the main loop | -225, and the loop carries on |
| `SYST:ERR:ALL?` with a full queue lost its whole response line on a worn heap | long replies are written entry by entry, never as one block |
| a host that vanished mid-command glued its half line onto the next host's first command | a half line is dropped after 1 s without input; PicoStim's client starts with a newline |
| virtual board: 0x1C and 0x1A acted as signals, an unread flood deadlocked it, a reset held its model lock for minutes, a Ctrl-C inside `gc.collect()` locked the heap | plain bytes, a 4 KiB input inbox, resets outside the lock, Ctrl-C only while MicroPython waits in a syscall (tests/test_virtual_board.py) |
"""


def findings(parts: dict[str, Any]) -> list[str]:
    out: list[str] = []
    fz = parts.get("fuzz", {})
    for line, msg in (fz.get("internal") or [])[:5]:
        out.append("- **-200 from a fuzz line** `%s`: %s" % (esc(line), msg))
    for line, msg in (fz.get("dead") or [])[:5]:
        out.append("- **no answer / restart** after `%s`: %s" % (esc(line), msg))
    for lines, a, b in (fz.get("changed") or [])[:3]:
        diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
        out.append(
            "- **settings changed in a batch of rejected lines** %s: %s"
            % ([esc(x) for x in lines[:5]], diff)
        )
    rj = parts.get("rejects", {})
    for line, errs, diff in (rj.get("changed") or [])[:5]:
        out.append(
            "- **rejected command changed a setting**: `%s` -> %s, changed: %s"
            % (esc(line), errs, diff)
        )
    for line, msg in (rj.get("internal") or [])[:3]:
        out.append("- **-200** from `%s`: %s" % (esc(line), msg))
    eb = parts.get("bytes", {})
    for b, what in eb.get("bad", []):
        out.append("- byte 0x%02x inside a line: %s" % (b, what))
    if eb.get("ctrl_c"):
        cc = eb["ctrl_c"]
        out.append(
            "- byte 0x03 (Ctrl-C) inside a line: by design it interrupts main.py (the "
            "firmware lets KeyboardInterrupt through so mpremote can break in) and the "
            "outputs go to rest (at rest afterwards: %s); the next `*IDN?` got %r (when "
            "main.py has stopped, the REPL echoes it instead of answering, until a reset or "
            "power cycle)" % (cc["at_rest"], cc["idn"][:60] or "no reply")
        )
    for i, s in enumerate(parts.get("storms", []), 1):
        for what, msg in s["internal"][:3]:
            out.append("- storm %d: %s %s" % (i, msg, str(what)[:500]))
        for b in s["limit_breaks"][:3]:
            out.append("- storm %d: settings over a limit: %s" % (i, b))
        w = s["wire"]
        for ex in w.get("examples", [])[:5]:
            out.append("- storm %d on the wire: %s" % (i, ex))
        close = w.get("close_starts", [])
        if close:
            out.append(
                "- storm %d on the wire: %d pulse starts closer than the frequency limit's "
                "minimum period (200 Hz: 625000 cycles), shortest %d cycles: they come where a "
                "running lead restarts after a settings change (the old train's last pulse, "
                "then the new train's first after the restart margin)"
                % (i, len(close), min(c for _ch, c in close))
            )
    pc = parts.get("power", {})
    for k, outcome in pc.get("bad", []):
        out.append("- power cut at write %d of *SAV: %s" % (k, outcome))
    hv = parts.get("host")
    if hv and hv["tries"] != hv["answered_first"]:
        out.append(
            "- after a host vanished mid-command, the next host's first `*IDN?` was not "
            "answered with the IDN in %d of %d reopenings (replies seen: %s)"
            % (
                hv["tries"] - hv["answered_first"],
                hv["tries"],
                hv["first_replies"],
            )
        )
    named = [
        ("fuzz", parts.get("fuzz")),
        ("rejects", parts.get("rejects")),
        ("power", parts.get("power")),
        ("host", parts.get("host")),
    ]
    named += [("storm %d" % i, x) for i, x in enumerate(parts.get("storms", []), 1)]
    for name, part in named:
        h = (part or {}).get("health")
        if h and not h["ok"]:
            out.append(
                "- **after the %s part the instrument could not start four DRG leads**: "
                "`OUTP:GLOB ON` queued %s, %d of 4 leads pulsed, `SYST:MEM:FREE?` said %d "
                "bytes free" % (name, h["errors"][:160], h["leads pulsing"], h["free"])
            )
    if parts.get("bytes", {}).get("ctrl_c_start", "0,").startswith("0,") is False:
        out.append(
            "- part 3: starting lead 1 before the Ctrl-C test queued %s"
            % parts["bytes"]["ctrl_c_start"][:160]
        )
    hv = parts.get("host") or {}
    for what in hv.get("flood", {}).get("stalled", []):
        out.append(
            "- **the virtual board stopped taking input** during the flood of %s: the write "
            "did not complete within its time limit (the board was replaced for the parts "
            "after it)" % what
        )
    un = parts.get("unread")
    if un and not un["written"]:
        out.append(
            "- **virtual board deadlock under an unread query flood**: a host wrote %d "
            "`*IDN?` lines without reading; after %.0f s the write had still not gone "
            "through, restarts %d (no watchdog reset), and the board never answered again. "
            "From the supervisor's code: its bridge thread writes host input to the "
            "MicroPython pty with a blocking `os.write` while holding `_gate_lock` "
            "(`_to_mp`); MicroPython blocks writing replies to its own pty, which only that "
            "same thread drains; the watchdog emulation (`hard_reset` -> `_kill_mp` -> "
            "`_hold_input`) then waits for `_gate_lock` too. A Pico drops USB output no host "
            "reads (the supervisor's `_write_user` does too); the input side does not. "
            "Repro: `VirtualBoard()`, write `b'*IDN?\\n' * 20000` to its port in one call, "
            "read nothing." % (un["n"], un["seconds"], un["restarts"])
        )
    so = parts.get("soak", {})
    for a in so.get("anomalies", [])[:5]:
        out.append("- soak: %s" % a)
    if not out:
        out.append("- nothing: no crash, no restart, no lost command, no broken limit.")
    return out


def details(parts: dict[str, Any]) -> list[str]:
    out = []
    fz = parts.get("fuzz")
    if fz:
        codes = ", ".join(
            "%d: %d" % kv for kv in sorted(fz["by_code"].items(), key=lambda kv: -kv[1])[:14]
        )
        out += [
            "**Fuzzing.** %d lines in %.0f s (%.0f lines/s): %d answered, %d accepted, %d rejected "
            "(errors queued, by code: %s); %d query replies; %d lines verified not to change "
            "any setting (batches of rejected single-command lines, full snapshot of the "
            "4 leads and the instrument before and after); restarts: %d."
            % (
                fz["lines"],
                fz["seconds"],
                fz["lines"] / max(fz["seconds"], 1e-9),
                fz["answered"],
                fz["accepted"],
                fz["rejected"],
                codes,
                fz["query_replies"],
                fz["checked_unchanged"],
                fz["restarts"],
            ),
            "",
        ]
    rj = parts.get("rejects")
    if rj:
        out += [
            "**Rejected commands.** %d setting lines with hostile values, %d rejected, %d accepted; "
            "a full snapshot after each." % (rj["lines"], rj["rejected"], rj["accepted"]),
            "",
        ]
    for i, s in enumerate(parts.get("storms", []), 1):
        w = s["wire"]
        out += [
            "**Storm %d.** %d commands in %.0f s with limits tightened and locked (200 Hz, 3 mA, "
            "20 %% duty, 0.5 uC per phase); error queue never above %d entries; "
            "`SYST:MEM:FREE?` %s; %d captures, %d phases checked on the wire: both pins "
            "high %d, over the charge limit %d, unbalanced %d, current changed inside a "
            "phase %d, starts closer than the limit %d; restarts %d."
            % (
                i,
                s["commands"],
                s["seconds"],
                s["max_queue"],
                s["mem"],
                s["captures"],
                w.get("phases", 0),
                w.get("both_high", 0),
                w.get("over_charge", 0),
                w.get("unbalanced", 0),
                w.get("current_moved", 0),
                len(w.get("close_starts", [])),
                s["restarts"],
            ),
            "",
        ]
    pc = parts.get("power")
    if pc:
        out += [
            "**Power cuts.** A first `*SAV` to a new preset did %d flash block writes. "
            "Overwriting preset 3, the power was cut at write k = 1, 2, ... until a `*SAV` "
            "ended before write k came (the control, 'no cut'):" % pc["writes"],
            "",
            "| k | cut | preset 3 after reboot | SYST:LOG? readable | reset cause |",
            "| --- | --- | --- | --- | --- |",
        ]
        out += ["| %d | %s | %s | %s | %s |" % row for row in pc["rows"]]
        out.append("")
    hv = parts.get("host")
    if hv:
        fl = hv["flood"]
        out += [
            "**Host vanishing.** %d times a random command was cut after a random number of "
            "bytes and the port closed, then opened again by a new host (every other time "
            "PicoStim's client at once, else a bare serial host 1.1 s later): the first "
            "`*IDN?` was answered %d times, a stale or garbled reply came %d times. The same "
            "cut followed at once (20 ms) by a bare host's `*IDN?`: answered %d times (the "
            "firmware drops a half line only after a second without input; the client's "
            "newline is the cure), and `\\n*CLS;*IDN?` after it %d times; "
            "restarts %d."
            % (
                hv["tries"],
                hv["answered_first"],
                hv["stale_reply"],
                hv["bare_at_once"],
                hv["answered_after_newline"],
                hv["restarts"],
            ),
            "",
            "**Floods.** %d bytes of printable junk without a newline: %.1f s, then `%s`; 2000 "
            "`*IDN?` whose replies nobody read: board answering afterwards: %s (%.1f s); "
            "%d tagged lines back to back: %d lost or wrong (%.1f s); restarts %d; reset cause %s."
            % (
                fl["junk"],
                fl["junk_seconds"],
                fl["junk_errors"][:80],
                fl["unread_answered"],
                fl["unread_seconds"],
                fl["tagged"],
                fl["tagged_lost"],
                fl["tagged_seconds"],
                fl["restarts"],
                fl["cause"],
            ),
            "",
        ]
    so = parts.get("soak")
    if so:
        out += [
            "**Soak.** Four leads (20 Hz DRG; 130 Hz inverted, no gap; 100 Hz bursts of 5 "
            "every 200 ms; 7 Hz with 333.3 us phases and a 64 ns gap), SYST:HEAR 5 s fed "
            "by `*OPC?` between captures: %.0f s, %d captures, %d pulses checked (width, "
            "gap, spacing exact to the cycle, pins never both high): %d anomalies."
            % (so["seconds"], so["captures"], so["pulses"], len(so["anomalies"])),
            "",
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--lines", type=int, help="fuzz lines (full 100000, quick 250)")
    ap.add_argument("--rejects", type=int, help="hostile setting lines with snapshots")
    ap.add_argument("--storms", type=int, help="number of command storms (full 2)")
    ap.add_argument("--storm-size", type=int, help="commands per storm (full 10000)")
    ap.add_argument("--soak", type=float, help="soak seconds (full 120, quick 2)")
    ap.add_argument("--vanish", type=int, help="host-vanishing tries (full 60, quick 3)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    ap.add_argument(
        "--skip", default="", help="comma-separated parts to leave out (fuzz,rejects,...)"
    )
    args = ap.parse_args(argv)
    q = args.quick
    n_lines = args.lines or (150 if q else 100_000)
    n_rej = args.rejects or (10 if q else 1500)
    storms = args.storms if args.storms is not None else (1 if q else 2)
    storm_size = args.storm_size or (150 if q else 10_000)
    soak_s = args.soak if args.soak is not None else (2.0 if q else 120.0)
    vanish = args.vanish or (3 if q else 60)
    skip = set(args.skip.split(",")) - {""}
    args.size_text = (
        "%s: %d fuzz lines, %d hostile setting lines, %s non-printable byte values, %d storm(s) of %d "
        "commands, every flash write of one *SAV, %d host vanishings, floods, %.0f s soak"
        % (
            "quick" if q else "full",
            n_lines,
            n_rej,
            "8" if q else "all 159",
            storms,
            storm_size,
            vanish,
            soak_s,
        )
    )
    info = machine_info()
    rng = random.Random(args.seed)
    parts: dict[str, Any] = {}
    t0 = time.monotonic()
    with board(timeout=60) as (vb, inst):
        link = Link(vb, inst)
        if "fuzz" not in skip:
            tighten_and_lock(link)
            log("part 1: fuzzing", n_lines)
            parts["fuzz"] = fuzz(link, n_lines, 25, args.seed)
            parts["fuzz"]["health"] = health(link)
        if "rejects" not in skip:
            log("part 2: rejected commands", n_rej)
            parts["rejects"] = rejects(link, n_rej)
            parts["rejects"]["health"] = health(link)
        if "bytes" not in skip:
            log("part 3: every byte")
            parts["bytes"] = every_byte(link, q)
        if storms and "storms" not in skip:
            parts["storms"] = []
            tighten_and_lock(link)  # the storms check against these limits
            for i in range(storms):
                log("part 4: storm", i + 1, storm_size)
                parts["storms"].append(storm(link, storm_size, args.seed + i, 0.25))
                parts["storms"][-1]["health"] = health(link)
    with board(timeout=60) as (vb, inst):
        link = Link(vb, inst)
        if "power" not in skip:
            log("part 5: power cuts")
            parts["power"] = power_cuts(link, q)
            parts["power"]["health"] = health(link)
        if "host" not in skip:
            log("part 6: host vanishing, floods")
            parts["host"] = host_vanishing(
                link, vanish, rng, 1 << (14 if q else 20), 2000 if q else 20_000
            )
            if not parts["host"]["flood"]["stalled"]:
                parts["host"]["health"] = health(link)
        stalled = parts.get("host", {}).get("flood", {}).get("stalled")
        if soak_s and "soak" not in skip and q and not stalled:
            log("part 7: soak", soak_s)
            parts["soak"] = soak(link, soak_s, 0.5)
    if soak_s and "soak" not in skip and not q:
        with board(timeout=60) as (vb, inst):  # a board of its own: the floods came before
            log("part 7: soak", soak_s)
            parts["soak"] = soak(Link(vb, inst), soak_s, 1.0)
    if not q and "host" not in skip:
        with board(timeout=60) as (vb, inst):
            log("part 6c: 20000 unread *IDN? on a board of its own")
            parts["unread"] = unread_flood(Link(vb, inst), 20_000, 60)
    wall = time.monotonic() - t0
    text, tables = report(args, info, parts, wall)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        log("wrote", args.out)
    emit("reliability", tables, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
