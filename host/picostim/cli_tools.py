"""Board tools of the `picostim` command: info, list, status, set, on, off, save, recall.

    picostim info [--port PORT]              versions, boards found, the board's identity
    picostim list                            every board: port, kind, serial/uid, *IDN?
    picostim status [--port PORT]            settings and state of every lead, safety state
    picostim set 1 --width 200us --gap 50us --freq 20Hz --current 0.8mA
    picostim on [--channel N]                global output on (or one lead's enable)
    picostim off [--channel N]
    picostim save N / picostim recall N      presets 0..9

PORT is auto (the default), id:<serial>, sim, a device path or a pyserial URL (see
picostim.ports). `set`, `on`, `off`, `save`, `recall` and `status` take `--port` several times,
or `--all`, to act on many boards at once: each board gets its own connection and thread, and
prints one line prefixed with its port and id; the command fails if any board failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from picostim import ports
from picostim.api import ChannelSettings, PicoStim, Status
from picostim.client import PicoStimError, ScpiClient, ScpiError

Action = Callable[[PicoStim], str]

_SI_PREFIXES: dict[str, tuple[tuple[float, str], ...]] = {
    "s": ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n")),
    "Hz": ((1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m")),
    "A": ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n")),
}


def fmt_si(value: float, unit: str) -> str:
    """200e-6, "s" -> "200 us"; 5000, "Hz" -> "5 kHz"."""
    if value == 0:
        return "0 " + unit
    scales = _SI_PREFIXES.get(unit, ((1.0, ""),))
    factor, prefix = scales[-1]
    for f, p in scales:
        if abs(value) >= f * 0.9999995:
            factor, prefix = f, p
            break
    return "%.6g %s%s" % (value / factor, prefix, unit)


def summary(s: ChannelSettings) -> str:
    """One line: the settings a lead plays."""
    pulse = "width %s" % fmt_si(s["width"], "s")
    if s["shape"] == "biphasic":
        pulse += ", gap %s" % fmt_si(s["gap"], "s")
    parts = [
        pulse,
        "%s (period %s)" % (fmt_si(s["frequency"], "Hz"), fmt_si(s["period"], "s")),
        fmt_si(s["current"], "A"),
        "%s %s" % (s["shape"], s["polarity"]),
    ]
    if s["burst_count"] > 1:
        parts.append("bursts of %d every %s" % (s["burst_count"], fmt_si(s["burst_period"], "s")))
    if s["train"]:
        parts.append("train %s" % fmt_si(s["train"], "s"))
    if s["delay"]:
        parts.append("delay %s" % fmt_si(s["delay"], "s"))
    return ", ".join(parts)


def format_status(st: Status, port: str) -> str:
    """A readable table of a board's state and every lead's settings."""
    idn = st.idn
    if st.session_remaining is None:
        session = "no limit"
    else:
        session = "%s left" % fmt_si(st.session_remaining, "s")
    faults = "; ".join("%d %s" % f for f in st.faults) or "none"
    lines = [
        "%s %s  id %s  firmware %s  at %s"
        % (idn.manufacturer, idn.model, idn.board_id, idn.version, port),
        "output     %s" % ("ON" if st.output_on else "off"),
        "interlock  %s" % ("closed" if st.interlock_closed else "OPEN"),
        "faults     %s" % faults,
        "limits     %s" % ("locked" if st.locked else "unlocked"),
        "session    %s" % session,
        "",
    ]
    rows: list[tuple[str, Callable[[ChannelSettings], str]]] = [
        ("width", lambda s: fmt_si(s["width"], "s")),
        ("gap", lambda s: fmt_si(s["gap"], "s")),
        ("frequency", lambda s: fmt_si(s["frequency"], "Hz")),
        ("period", lambda s: fmt_si(s["period"], "s")),
        ("shape", lambda s: s["shape"]),
        ("polarity", lambda s: s["polarity"]),
        ("current", lambda s: fmt_si(s["current"], "A")),
        ("ramp", lambda s: fmt_si(s["ramp"], "s")),
        ("burst count", lambda s: str(s["burst_count"])),
        (
            "burst period",
            lambda s: fmt_si(s["burst_period"], "s") if s["burst_count"] > 1 else "-",
        ),
        ("train", lambda s: fmt_si(s["train"], "s") if s["train"] else "continuous"),
        ("delay", lambda s: fmt_si(s["delay"], "s")),
    ]
    table = [["", *("ch%d" % c.number for c in st.channels)]]
    table.append(["enabled", *("on" if c.enabled else "off" for c in st.channels)])
    for name, get in rows:
        table.append([name, *(get(c.settings) for c in st.channels)])
    widths = [max(len(row[i]) for row in table) + 2 for i in range(len(table[0]))]
    for row in table:
        lines.append("".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ScpiError):
        return "the instrument reported error %s" % exc
    if isinstance(exc, OSError):
        return "lost the connection (%s): is it still plugged in?" % exc
    return str(exc)


# ---------------------------------------------------------------- running on boards


@dataclass
class Result:
    port: str
    board_id: str
    text: str
    error: BaseException | None = None


def _run_one(port: str, action: Action, timeout: float) -> Result:
    board_id = ""
    try:
        ps = PicoStim.open(port, timeout=timeout)
        try:
            board_id = ps.idn.board_id
            return Result(port, board_id, action(ps))
        finally:
            ps.close()
    except (PicoStimError, OSError) as exc:
        return Result(port, board_id, "", exc)


def _specs(args: argparse.Namespace) -> list[str]:
    if args.all:
        if args.ports:
            raise PicoStimError("give --port or --all, not both")
        boards = ports.list_boards()
        if not boards:
            ports.auto(boards)  # raises "no PicoStim found" with what to do
        return [b.port for b in boards]
    return list(args.ports or ["auto"])


def run_on_boards(args: argparse.Namespace, action: Action) -> int:
    """Run `action` on every board the arguments name: one board prints its result as is and
    raises its errors; several boards run concurrently and print one line each."""
    with contextlib.ExitStack() as stack:
        found: list[str] = []
        for spec in _specs(args):
            port = stack.enter_context(ports.resolve_port(spec))
            if os.path.realpath(port) not in (os.path.realpath(p) for p in found):
                found.append(port)
        if len(found) == 1 and not args.all:
            ps = PicoStim.open(found[0], timeout=args.timeout)
            try:
                print(action(ps))
            except OSError as exc:
                raise PicoStimError("%s: %s" % (found[0], _describe(exc))) from exc
            finally:
                ps.close()
            return 0
        with ThreadPoolExecutor(max_workers=min(32, len(found))) as pool:
            results = list(pool.map(lambda p: _run_one(p, action, args.timeout), found))
    width = max(len(r.port) for r in results)
    failed = [r for r in results if r.error is not None]
    known = {os.path.realpath(b.port): b.serial for b in ports.list_boards()} if failed else {}
    for r in results:
        board_id = r.board_id or known.get(os.path.realpath(r.port)) or "-"
        head = "%s %-16s" % (r.port.ljust(width), board_id)
        if r.error is None:
            text = r.text.replace("\n", "\n" + " " * (len(head) + 2))
            print("%s  %s" % (head, text), flush=True)
        else:
            print("%s  FAILED: %s" % (head, _describe(r.error)), flush=True)
            if args.debug:
                traceback.print_exception(r.error, file=sys.stderr)
    if failed:
        raise PicoStimError(
            "%d of %d boards failed: %s"
            % (len(failed), len(results), ", ".join(r.port for r in failed))
        )
    return 0


# ---------------------------------------------------------------- commands


def cmd_info(args: argparse.Namespace) -> int:
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    import picostim

    print("picostim   %s (%s)" % (picostim.__version__, os.path.dirname(picostim.__file__)))
    print("python     %s (%s)" % (platform.python_version(), sys.executable))
    print("platform   %s" % platform.platform())
    for dist in ("pyserial", "pyvisa", "pyvisa-py", "mpremote"):
        print("%-10s %s" % (dist, version(dist)))
    boards = ports.list_boards()
    print("boards     %d found" % len(boards))
    for b in boards:
        print("  %-14s %-8s %-18s %s" % (b.port, b.kind, b.serial or "-", b.description))
    spec = args.ports[-1] if args.ports else "auto"
    try:
        with ports.resolve_port(spec) as port:
            ps = PicoStim.open(port, timeout=args.timeout)
            try:
                print("board      %s at %s" % (ps.idn, port))
            finally:
                ps.close()
    except (PicoStimError, OSError) as exc:
        print("board      %s" % _describe(exc))
        return 1 if args.ports else 0
    return 0


def _identify(board: ports.BoardInfo, timeout: float) -> str:
    try:
        with ScpiClient(board.port, timeout=timeout) as inst:
            return inst.query("*IDN?")
    except PicoStimError as exc:
        text = str(exc)
        if "another program" in text:
            return "(busy: another program has it open)"
        if "no answer" in text:
            return "(no answer within %.1f s)" % timeout
        return "(%s)" % text
    except OSError as exc:
        return "(%s)" % exc


def cmd_list(args: argparse.Namespace) -> int:
    boards = ports.list_boards()
    if not boards:
        print("no boards found: %s" % ports.NOT_FOUND_HINT)
        return 0
    with ThreadPoolExecutor(max_workers=min(32, len(boards))) as pool:
        idns = list(pool.map(lambda b: _identify(b, args.timeout), boards))
    table = [["PORT", "KIND", "SERIAL/UID", "*IDN?"]]
    table += [[b.port, b.kind, b.serial or "-", idn] for b, idn in zip(boards, idns, strict=True)]
    widths = [max(len(row[i]) for row in table) + 2 for i in range(4)]
    for row in table:
        print("".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    return run_on_boards(args, lambda ps: format_status(ps.status(), ps.port))


_SET_OPTIONS = (
    ("width", "--width", "s", "each phase's width, e.g. 200us"),
    ("gap", "--gap", "s", "interphase gap (biphasic), e.g. 50us"),
    ("frequency", "--freq", "Hz", "pulse frequency, e.g. 20Hz (or --period)"),
    ("period", "--period", "s", "pulse start to pulse start, e.g. 50ms"),
    ("current", "--current", "A", "current, e.g. 0.8mA"),
    ("shape", "--shape", "", "biphasic or monophasic"),
    ("polarity", "--polarity", "", "normal (phase 1 on pin A) or inverted"),
    ("burst_count", "--burst-count", "", "pulses per burst (1: no bursts)"),
    ("burst_period", "--burst-period", "s", "burst start to burst start, e.g. 5ms"),
    ("train", "--train", "s", "train duration (0: continuous), e.g. 10s"),
    ("delay", "--delay", "s", "delay before the first pulse, e.g. 10us"),
    ("ramp", "--ramp", "s", "soft-start time of the current, e.g. 2s"),
)


def cmd_set(args: argparse.Namespace) -> int:
    settings = {name: getattr(args, name) for name, *_ in _SET_OPTIONS}
    settings = {k: v for k, v in settings.items() if v is not None}
    if not settings:
        raise PicoStimError(
            "nothing to set: give at least one of %s"
            % ", ".join(flag for _, flag, *_ in _SET_OPTIONS)
        )
    if "frequency" in settings and "period" in settings:
        raise PicoStimError("give --freq or --period, not both")

    def action(ps: PicoStim) -> str:
        ch = ps.channel(args.channel)
        ch.configure(**settings)
        return "ch%d: %s" % (args.channel, summary(ch.settings()))

    return run_on_boards(args, action)


def _switch(args: argparse.Namespace, on: bool) -> int:
    def action(ps: PicoStim) -> str:
        if args.channel:
            ch = ps.channel(args.channel)
            if on:
                ch.enable()
                note = "" if ps.is_on() else " (global output off: `picostim on` starts it)"
                return "ch%d enabled%s" % (args.channel, note)
            ch.disable()
            return "ch%d disabled" % args.channel
        if not on:
            ps.off()
            return "output off"
        ps.on()
        leads = [c.number for c in ps.channels if c.is_enabled()]
        if not leads:
            return "output on, but no lead is enabled (`picostim on --channel N`)"
        return "output on: %s playing" % ", ".join("ch%d" % n for n in leads)

    return run_on_boards(args, action)


def cmd_on(args: argparse.Namespace) -> int:
    return _switch(args, True)


def cmd_off(args: argparse.Namespace) -> int:
    return _switch(args, False)


def cmd_save(args: argparse.Namespace) -> int:
    def action(ps: PicoStim) -> str:
        ps.save(args.slot)
        return "saved preset %d" % args.slot

    return run_on_boards(args, action)


def cmd_recall(args: argparse.Namespace) -> int:
    def action(ps: PicoStim) -> str:
        ps.recall(args.slot)
        return "recalled preset %d (outputs off)" % args.slot

    return run_on_boards(args, action)


# ---------------------------------------------------------------- parser


def _board_options(p: argparse.ArgumentParser, many: bool = True) -> None:
    if many:
        p.add_argument(
            "--port",
            dest="ports",
            action="append",
            metavar="PORT",
            help="%s; repeat for several boards" % ports.SPEC_HELP,
        )
        p.add_argument("--all", action="store_true", help="every board `picostim list` shows")
    else:
        p.add_argument(
            "--port", dest="ports", action="append", metavar="PORT", help=ports.SPEC_HELP
        )
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for a reply (default 5)"
    )


def add_tool_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the board tools to the `picostim` command's subparsers."""
    p = sub.add_parser("info", help="versions, boards found and the board's identity")
    _board_options(p, many=False)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("list", help="every board found: port, kind, serial/uid, *IDN?")
    p.add_argument(
        "--timeout", type=float, default=2.0, help="seconds to wait for *IDN? (default 2)"
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("status", help="settings and state of every lead, safety state")
    _board_options(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "set",
        help="change a lead's settings (values with SI suffixes, as SCPI takes them)",
        description="Change a lead's settings; the others keep their values. Values are "
        "SCPI numbers with optional SI suffixes (200us, 0.2ms, 2e-4, 20Hz, 0.8mA) or "
        "MIN/MAX/DEF. They are sent in an order the board accepts (e.g. the width before a "
        "higher frequency).",
    )
    p.add_argument("channel", type=int, choices=range(1, 5), metavar="CH", help="lead 1..4")
    for name, flag, _unit, help_text in _SET_OPTIONS:
        p.add_argument(flag, dest=name, metavar="VALUE", help=help_text)
    _board_options(p)
    p.set_defaults(func=cmd_set)

    for name, func, verb in (("on", cmd_on, "on"), ("off", cmd_off, "off")):
        p = sub.add_parser(
            name, help="global output %s (--channel N: only that lead's enable)" % verb
        )
        p.add_argument("--channel", type=int, choices=range(1, 5), metavar="N", help="lead 1..4")
        _board_options(p)
        p.set_defaults(func=func)

    p = sub.add_parser("save", help="save every lead's settings as preset N (0..9)")
    p.add_argument("slot", type=int, metavar="N")
    _board_options(p)
    p.set_defaults(func=cmd_save)

    p = sub.add_parser("recall", help="load preset N (0..9); outputs are turned off first")
    p.add_argument("slot", type=int, metavar="N")
    _board_options(p)
    p.set_defaults(func=cmd_recall)
