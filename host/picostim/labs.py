"""The teaching-lab worksheets (`docs/labs/*.md`), run on a virtual board and checked.

    python -m picostim.labs                    # run every worksheet on a fresh virtual board
    python -m picostim.labs charge-balance     # one worksheet (name or path)
    python -m picostim.labs --images           # ... and rewrite the pictures in docs/labs/img/
    python -m picostim.labs --port /tmp/ps     # on a virtual board already running there

A worksheet is Markdown for students. Its fenced code blocks with one of three info strings
are also the runner's program, executed in order:

`scpi` blocks -- what the student types in `picostim console`:
    > SOUR1:PULS:WIDT?          a line sent to the instrument
    < 2.000000E-04              the reply it must give (one reply line per sent line at most)
    # ...                       a comment
  A sent line without a `<` line after it must give no reply. In a reply, `<a|b>` matches
  one of those words and any other `<text>` matches anything (a board id, a memory count).
  After the block the error queue must be empty: every error provoked is read with SYST:ERR?.

`bench` blocks -- what the student does to the virtual board's bench (the worksheet gives the
  real-board equivalent in words), one action per line, `#` starts a comment:
    interlock open | interlock close      open or close the interlock loop
    trigger high | trigger low            drive the external trigger input
    trigger 20ms                          a rising edge, back low 20 ms later
    wait 100ms                            let time pass
    capture 0.2                           start recording every output for 0.2 s (the
                                          recording runs on while the next steps are done)
    png NAME.png SIGNAL... [zoom REF 600us]   draw the last capture (only with --images)

`expect` blocks -- what the last capture must show, in 125 MHz cycles (8 ns), one per line:
    width S = v             every complete high pulse of S lasts v cycles
    period S = v            every rise-to-rise interval of S is v cycles
    rhythm S = v1 v2 ...    the rise-to-rise intervals of S repeat this pattern
    gap A B = v             from the end of each A pulse to the next rise of B
    delay REF S = v         from REF to the first rise of S at or after it
    pulses S OP n           complete high pulses of S in the capture
    rises S [after REF] OP n     rising edges of S (after REF)
    level S = 0|1           the level of S at the end of the capture
    current chN = amps      lead N's current at the end of the capture
    peak-current chN = amps the highest current of lead N during the capture
  OP is one of = >= <=. S is a capture signal (ch1_a ... ch4_b, sync, trigger, interlock, led);
  REF is `S` (its first rise), `S.riseK` or `S.fallK` (its K-th rise or fall in the capture).

PicoStim is a teaching and test instrument: never connect it to a person or an animal.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from picostim.client import PicoStimError, ScpiClient
from picostim.pinmap import PINS
from picostim.sim.virtual_board import Capture, VirtualBoard
from picostim.sim.waveform import SYS_HZ, Waveform

REPO = Path(__file__).resolve().parents[2]
LABS_DIR = REPO / "docs" / "labs"
IMG_DIR = LABS_DIR / "img"
#: The worksheets, in the order a class works through them.
WORKSHEETS = ("first-pulse", "charge-balance", "multi-lead")
KINDS = ("scpi", "bench", "expect")
BENCH_VERBS = ("interlock", "trigger", "wait", "capture", "png")
NO_ERROR = '0,"No error"'


class LabError(Exception):
    """A worksheet line the runner cannot understand."""


# --------------------------------------------------------------------------- parsing


@dataclass
class Block:
    """One fenced code block of a runnable kind: its fence's line number and its lines."""

    kind: str
    lineno: int
    lines: list[tuple[int, str]] = field(default_factory=list)
    path: str = ""


_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w-]*)")


def blocks(text: str, path: str = "", kinds: tuple[str, ...] = KINDS) -> list[Block]:
    """The fenced blocks of `text` whose info string (first word) is one of `kinds`."""
    out: list[Block] = []
    fence: str | None = None
    current: Block | None = None
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence is None:
            m = _FENCE.match(stripped)
            if m:
                fence = m.group(1)
                current = Block(m.group(2), no, path=path) if m.group(2) in kinds else None
            continue
        if stripped.startswith(fence) and not stripped.strip(fence[0]):
            if current is not None:
                out.append(current)
            fence = current = None
            continue
        if current is not None:
            current.lines.append((no, line.rstrip()))
    if fence is not None:
        raise LabError("%s: unterminated code block" % path)
    return out


@dataclass
class Exchange:
    """One line sent and the reply it must give (None: no reply at all)."""

    lineno: int
    send: str
    reply: str | None


def scpi_exchanges(block: Block) -> list[Exchange]:
    out: list[Exchange] = []
    for no, line in block.lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("> "):
            out.append(Exchange(no, line[2:].strip(), None))
        elif line.startswith("< ") or line == "<":
            if not out or out[-1].reply is not None:
                raise LabError(
                    "%s:%d: a reply line needs a sent line before it" % (block.path, no)
                )
            out[-1].reply = line[2:]
        else:
            raise LabError(
                "%s:%d: scpi lines start with '> ' or '< ': %r" % (block.path, no, line)
            )
    return out


def reply_matches(expected: str, got: str) -> bool:
    """Whether reply `got` is `expected`, where `<a|b|c>` matches one of those words and any
    other `<placeholder>` matches any text (possibly empty)."""
    out = []
    for part in re.split(r"(<[^<>]+>)", expected):
        if part.startswith("<") and part.endswith(">"):
            inner = part[1:-1]
            if "|" in inner:
                out.append("(?:%s)" % "|".join(re.escape(w) for w in inner.split("|")))
            else:
                out.append(".*?")
        else:
            out.append(re.escape(part))
    return re.fullmatch("".join(out), got) is not None


# --------------------------------------------------------------------------- results


@dataclass
class Check:
    path: str
    lineno: int
    text: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        tail = "" if self.ok or not self.detail else "  <- %s" % self.detail
        return "%s %s:%d  %s%s" % (mark, Path(self.path).name, self.lineno, self.text, tail)


@dataclass
class Report:
    name: str
    checks: list[Check] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures


def run_exchanges(
    inst: ScpiClient, exchanges: list[Exchange], path: str, checks: list[Check]
) -> None:
    """Send each line; compare its reply; then require an empty error queue."""
    for ex in exchanges:
        inst.write(ex.send)
        if ex.reply is None:
            continue
        try:
            got = inst.read_line()
        except PicoStimError as exc:  # no reply in time
            checks.append(Check(path, ex.lineno, ex.send, False, str(exc)))
            return
        ok = reply_matches(ex.reply, got)
        detail = "" if ok else "replied %r, the worksheet says %r" % (got, ex.reply)
        checks.append(Check(path, ex.lineno, "%s -> %s" % (ex.send, got), ok, detail))
    if exchanges:
        last = exchanges[-1].lineno
        got = inst.query("SYST:ERR?")
        ok = got == NO_ERROR
        detail = "" if ok else "%r left unread (or a reply nobody expected)" % got
        for _ in range(32):  # empty the queue, so the next block starts clean
            if got == NO_ERROR or not re.match(r"-?\d+,", got):
                break
            got = inst.query("SYST:ERR?")
        checks.append(Check(path, last, "error queue empty after the block", ok, detail))


# --------------------------------------------------------------------------- measurements


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(s|ms|us)?", text.strip())
    if not m:
        raise LabError("not a time: %r (use e.g. 0.2, 200ms, 600us)" % text)
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, None: 1.0}[m.group(2)]
    return float(m.group(1)) * scale


def rises(wf: Waveform, name: str) -> list[int]:
    return [e.cycle for e in wf.edges(name) if e.level]


def falls(wf: Waveform, name: str) -> list[int]:
    return [e.cycle for e in wf.edges(name) if not e.level]


def reference(wf: Waveform, ref: str) -> int:
    """The cycle of `S` (first rise), `S.riseK` or `S.fallK`."""
    m = re.fullmatch(r"(\w+?)(?:\.(rise|fall)(\d+))?", ref)
    if not m:
        raise LabError("not a reference: %r" % ref)
    name, kind, k = m.group(1), m.group(2) or "rise", int(m.group(3) or 1)
    edges = rises(wf, name) if kind == "rise" else falls(wf, name)
    if len(edges) < k:
        raise AssertionError("%s has only %d %s(s) in the capture" % (name, len(edges), kind))
    return edges[k - 1]


def _intervals(wf: Waveform, name: str) -> list[int]:
    r = rises(wf, name)
    return [b - a for a, b in zip(r, r[1:], strict=False)]


def _current(wf: Waveform, lead: str) -> list[tuple[int, float]]:
    m = re.fullmatch(r"ch([1-4])", lead)
    if not m:
        raise LabError("not a lead: %r (ch1..ch4)" % lead)
    return wf.currents.get("ch%s_current" % m.group(1), [])


def _num(v: float) -> str:
    return "%d" % v if float(v).is_integer() else "%g" % v


_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: abs(a - b) < 1e-12,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


@dataclass
class _Line:
    """One parsed `expect` line: measurement, its words, comparison and value(s)."""

    what: str
    args: list[str]
    op: str
    values: list[str]

    def value(self) -> float:
        if len(self.values) != 1:
            raise LabError("one value expected after %s" % self.op)
        return float(self.values[0])

    def signals(self, n: int) -> list[str]:
        if len(self.args) != n:
            raise LabError("%s takes %d signal(s)" % (self.what, n))
        return self.args

    def compare(self, label: str, got: float) -> str:
        if not _OPS[self.op](got, self.value()):
            raise AssertionError("%s is %s" % (label, _num(got)))
        return _num(got)

    def exactly(self, label: str, found: list[int]) -> str:
        """Every measured value (there must be one at least) is the promised one."""
        if self.op != "=":
            raise LabError("%s is checked with '='" % self.what)
        values = sorted(set(found))
        if values != [int(self.value())]:
            raise AssertionError("%s measured: %s" % (label, values))
        return "all %d measured" % len(found)


def _m_width(wf: Waveform, x: _Line) -> str:
    (s,) = x.signals(1)
    widths = [f - r for r, f in wf.pulses(s)]
    if not widths:
        raise AssertionError("no complete pulse of %s in the capture" % s)
    return x.exactly("widths", widths)


def _m_period(wf: Waveform, x: _Line) -> str:
    (s,) = x.signals(1)
    steps = _intervals(wf, s)
    if not steps:
        raise AssertionError("fewer than two rises of %s in the capture" % s)
    return x.exactly("rise-to-rise intervals", steps)


def _m_rhythm(wf: Waveform, x: _Line) -> str:
    (s,) = x.signals(1)
    pattern = [int(v) for v in x.values]
    steps = _intervals(wf, s)
    k = len(pattern)
    if x.op != "=" or not k:
        raise LabError("rhythm S = v1 v2 ...")
    if len(steps) < 2 * k:
        raise AssertionError("only %d intervals of %s captured" % (len(steps), s))
    if not any(all(v == pattern[(i + sh) % k] for i, v in enumerate(steps)) for sh in range(k)):
        raise AssertionError("intervals measured: %s" % steps)
    return "all %d intervals" % len(steps)


def _m_gap(wf: Waveform, x: _Line) -> str:
    a, b = x.signals(2)
    b_rises = rises(wf, b)
    found: list[int] = []
    for _r, f in wf.pulses(a):
        later = [t for t in b_rises if t >= f]
        if later:
            found.append(later[0] - f)
    if not found:
        raise AssertionError("no %s pulse followed by a %s rise" % (a, b))
    return x.exactly("gaps", found)


def _m_delay(wf: Waveform, x: _Line) -> str:
    ref, s = x.signals(2)
    t = reference(wf, ref)
    later = [r for r in rises(wf, s) if r >= t]
    if not later:
        raise AssertionError("no rise of %s after %s" % (s, ref))
    return x.compare("the delay", later[0] - t)


def _m_pulses(wf: Waveform, x: _Line) -> str:
    (s,) = x.signals(1)
    return x.compare("the count", len(wf.pulses(s)))


def _m_rises(wf: Waveform, x: _Line) -> str:
    if len(x.args) == 3 and x.args[1] == "after":
        t = reference(wf, x.args[2])
        return x.compare("the count", len([r for r in rises(wf, x.args[0]) if r > t]))
    elif len(x.args) == 1:
        return x.compare("the count", len(rises(wf, x.args[0])))
    else:
        raise LabError("rises S [after REF]")


def _m_level(wf: Waveform, x: _Line) -> str:
    (s,) = x.signals(1)
    return x.compare("the level", wf.level(s, wf.cycles))


def _m_current(wf: Waveform, x: _Line) -> str:
    (lead,) = x.signals(1)
    pts = _current(wf, lead)
    return x.compare("the current", pts[-1][1] if pts else 0.0)


def _m_peak(wf: Waveform, x: _Line) -> str:
    (lead,) = x.signals(1)
    return x.compare("the peak current", max((a for _c, a in _current(wf, lead)), default=0.0))


MEASUREMENTS: dict[str, Callable[[Waveform, _Line], str]] = {
    "width": _m_width,
    "period": _m_period,
    "rhythm": _m_rhythm,
    "gap": _m_gap,
    "delay": _m_delay,
    "pulses": _m_pulses,
    "rises": _m_rises,
    "level": _m_level,
    "current": _m_current,
    "peak-current": _m_peak,
}


def measure(wf: Waveform, line: str) -> str:
    """Check one `expect` line on `wf` and say what was measured; AssertionError says what was
    measured instead, LabError that the line itself is wrong."""
    m = re.fullmatch(r"\s*([\w-]+)\s+(.*?)\s*(>=|<=|=)\s*(.+?)\s*", line)
    if not m or m.group(1) not in MEASUREMENTS:
        raise LabError("not an expectation: %r" % line)
    x = _Line(m.group(1), m.group(2).split(), m.group(3), m.group(4).split())
    for name in x.args:
        base = name.split(".")[0]
        if name != "after" and base not in Waveform.names() and not re.fullmatch(r"ch[1-4]", base):
            raise LabError("no signal %r (have %s)" % (base, ", ".join(Waveform.names())))
    try:
        return MEASUREMENTS[x.what](wf, x)
    except LabError as exc:
        raise LabError("%s: %r" % (exc, line)) from None


# --------------------------------------------------------------------------- pictures


def draw(wf: Waveform, path: Path, names: list[str], zoom: tuple[int, int] | None = None) -> None:
    """A step plot of `names` (one row each), over the whole capture or cycles zoom=(a, b)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = zoom if zoom else (0, wf.cycles)
    span = (b - a) / SYS_HZ
    scale, unit = (1e3, "ms") if span >= 2e-3 else (1e6, "us")
    fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(9, 0.55 * len(names) + 0.9))
    if len(names) == 1:
        axes = [axes]
    for ax, name in zip(axes, names, strict=True):
        level = wf.level(name, a)
        xs, ys = [0.0], [level]
        for e in wf.edges(name):
            if a < e.cycle <= b:
                t = (e.cycle - a) / SYS_HZ * scale
                xs += [t, t]
                ys += [ys[-1], e.level]
        xs.append(span * scale)
        ys.append(ys[-1])
        ax.plot(xs, ys, linewidth=1.2, color="tab:blue" if name.startswith("ch") else "tab:red")
        shown = [(r, f) for r, f in wf.pulses(name) if a <= r and f <= b]
        if zoom and name.startswith("ch") and len(shown) <= 4:  # label pulses with their widths
            for r, f in shown:
                mid = ((r + f) / 2 - a) / SYS_HZ * scale
                label = "%g us" % ((f - r) / 125)
                ax.text(mid, 1.1, label, ha="center", va="bottom", fontsize=8)
        ax.set_ylim(-0.25, 1.6 if zoom else 1.25)
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel(
        "time (%s) from the start of the %s" % (unit, "zoom" if zoom else "capture")
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- running


@dataclass
class _State:
    capture: Capture | None = None
    wf: Waveform | None = None


class Runner:
    """Runs worksheets on `vb` (a VirtualBoard, started or attached)."""

    def __init__(self, vb: VirtualBoard, images: Path | None = None) -> None:
        self.vb = vb
        self.images = images

    def run(self, path: Path) -> Report:
        text = path.read_text()
        report = Report(path.stem)
        where = str(path)
        state = _State()
        self.vb.set_interlock(True)  # every worksheet starts with the bench at rest
        self.vb.set_input(PINS["TRIGGER"], 0)
        with ScpiClient(self.vb.port, timeout=5) as inst:
            for block in blocks(text, where):
                try:
                    if block.kind == "scpi":
                        run_exchanges(inst, scpi_exchanges(block), where, report.checks)
                    elif block.kind == "bench":
                        self._bench(block, state, report)
                    else:
                        self._expect(block, state, report)
                except LabError as exc:
                    report.checks.append(Check(where, block.lineno, str(exc), False, "bad line"))
                except PicoStimError as exc:  # the board stopped answering: nothing more to run
                    report.checks.append(Check(where, block.lineno, "board", False, str(exc)))
                    break
            if state.capture is not None:
                state.capture.result()
            inst.write("OUTP:GLOB OFF")  # leave the board quiet for whatever runs next
        return report

    def _waveform(self, state: _State) -> Waveform:
        if state.capture is not None:
            state.wf = state.capture.result()
            state.capture = None
        if state.wf is None:
            raise LabError("no capture before this block")
        return state.wf

    def _bench(self, block: Block, state: _State, report: Report) -> None:
        vb = self.vb
        for no, raw in block.lines:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            verb, rest = words[0], words[1:]
            if verb == "interlock" and rest in (["open"], ["close"]):
                vb.set_interlock(rest[0] == "close")
            elif verb == "trigger" and rest in (["high"], ["low"]):
                vb.set_input(PINS["TRIGGER"], 1 if rest[0] == "high" else 0)
            elif verb == "trigger" and len(rest) == 1:
                vb.trigger(_seconds(rest[0]))
            elif verb == "wait" and len(rest) == 1:
                time.sleep(_seconds(rest[0]))
            elif verb == "capture" and len(rest) == 1:
                if state.capture is not None:
                    state.capture.result()
                state.wf = None
                state.capture = vb.start_capture(_seconds(rest[0]))
            elif verb == "png" and len(rest) >= 2:
                wf = self._waveform(state)
                try:
                    self._png(wf, rest, block.path, no, report)
                except AssertionError as exc:  # nothing to zoom on: the capture says why
                    report.checks.append(Check(block.path, no, line, False, str(exc)))
            else:
                raise LabError("%s:%d: unknown bench action %r" % (block.path, no, line))

    def _png(self, wf: Waveform, words: list[str], path: str, no: int, report: Report) -> None:
        name, names, zoom = words[0], words[1:], None
        if "zoom" in names:
            k = names.index("zoom")
            if len(names) != k + 3:
                raise LabError("%s:%d: png NAME SIGNAL... zoom REF DURATION" % (path, no))
            start = reference(wf, names[k + 1])
            length = int(_seconds(names[k + 2]) * SYS_HZ)
            lead = length // 20
            zoom = (max(0, start - lead), min(wf.cycles, start - lead + length))
            names = names[:k]
        for n in names:
            if n not in Waveform.names():
                raise LabError("%s:%d: no signal %r" % (path, no, n))
        if self.images is not None:
            out = self.images / name
            draw(wf, out, names, zoom)
            report.images.append(out)

    def _expect(self, block: Block, state: _State, report: Report) -> None:
        wf = self._waveform(state)
        for no, raw in block.lines:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                got = measure(wf, line)
            except AssertionError as exc:
                report.checks.append(Check(block.path, no, line, False, str(exc)))
            except LabError as exc:
                report.checks.append(Check(block.path, no, line, False, str(exc)))
            else:
                report.checks.append(Check(block.path, no, "%s  (%s)" % (line, got), True))


def worksheet_paths(names: list[str] | None = None) -> list[Path]:
    out = []
    for n in names or list(WORKSHEETS):
        p = Path(n)
        if not p.suffix:
            p = LABS_DIR / (n + ".md")
        out.append(p)
    return out


def run_all(vb: VirtualBoard, paths: list[Path], images: Path | None = None) -> Iterator[Report]:
    runner = Runner(vb, images)
    for p in paths:
        yield runner.run(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m picostim.labs",
        description="Run the teaching-lab worksheets on a virtual board and check them.",
    )
    ap.add_argument("worksheet", nargs="*", help="names (%s) or paths" % ", ".join(WORKSHEETS))
    ap.add_argument("--images", action="store_true", help="rewrite the pictures in docs/labs/img")
    ap.add_argument("--port", help="a virtual board already running (default: start one)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every check")
    args = ap.parse_args(argv)
    images = IMG_DIR if args.images else None
    vb = VirtualBoard.attach(args.port) if args.port else VirtualBoard()
    failed = 0
    try:
        for report in run_all(vb, worksheet_paths(args.worksheet), images):
            for c in report.checks:
                if args.verbose or not c.ok:
                    print(c)
            for img in report.images:
                print("wrote %s" % img.relative_to(REPO) if img.is_relative_to(REPO) else img)
            print(
                "%s: %d checks, %d failed"
                % (report.name, len(report.checks), len(report.failures))
            )
            failed += len(report.failures)
    finally:
        vb.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
