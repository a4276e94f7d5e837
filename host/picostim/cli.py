"""`picostim`: command-line tools for the PicoStim pulse generator and its virtual board.

    picostim sim                         virtual board + its front panel (a terminal UI)
    picostim sim --link /tmp/ps --no-panel   serve a virtual board at /tmp/ps until Ctrl-C
    picostim panel --port PORT           the front panel on a board (or a virtual one)
    picostim console --port PORT         SCPI console on a board
    picostim scpi --port PORT "CMD"      one command (prints the reply of a query)
    picostim capture --port PORT --duration 0.5 --vcd out.vcd [--png out.png]
    picostim flash --port auto           deploy the firmware (compile, copy, verify, reset)

Every expected failure prints `picostim: <what happened and what to do>` and exits 1;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable

from picostim import __version__
from picostim.cli_tools import add_tool_commands
from picostim.client import PicoStimError, ScpiClient, ScpiError
from picostim.ports import resolve_port


def _console(port: str, out: Callable[[str], None] = print) -> None:
    """An interactive SCPI console with line editing and history."""
    try:
        import readline

        hist = os.path.expanduser("~/.picostim_history")
        try:
            readline.read_history_file(hist)
        except OSError:
            pass
    except ImportError:  # pragma: no cover - readline is missing on some platforms
        readline = None  # type: ignore[assignment]
    with ScpiClient(port) as inst:
        out("Connected to %s" % inst.query("*IDN?"))
        out("Type SCPI commands (e.g. SOUR1:PULS:WIDT 200us, OUTP:GLOB ON); Ctrl-D quits.")
        while True:
            try:
                line = input("picostim> ").strip()
            except EOFError:
                out("")
                break
            except KeyboardInterrupt:
                out("")
                continue
            if not line:
                continue
            if line.lower() in ("quit", "exit"):
                break
            try:
                if "?" in line:
                    out(inst.query(line))
                else:
                    inst.write(line)
                for code, msg in inst.errors():
                    out("error %d: %s" % (code, msg))
            except PicoStimError as exc:
                out("picostim: %s" % exc)
        if readline is not None:
            try:
                readline.write_history_file(hist)
            except OSError:
                pass


def cmd_sim(args: argparse.Namespace) -> int:
    from picostim.sim.flash import FlashImageError
    from picostim.sim.supervisor import Supervisor

    workdir = tempfile.mkdtemp(prefix="picostim-sim-")
    try:
        sup = Supervisor(workdir, uid=args.uid, flash=args.flash)
    except (FlashImageError, OSError) as exc:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        raise PicoStimError(
            "%s (give another --flash file, or none for a fresh one)" % exc
        ) from None
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    old = signal.signal(signal.SIGTERM, _stop)
    link = args.link
    try:
        sup.start()
        path = sup.port
        if link:
            if os.path.islink(link) or os.path.exists(link):
                os.unlink(link)
            os.symlink(sup.port, link)
            path = link
        print(path, flush=True)
        if args.no_panel:
            signal.signal(signal.SIGINT, _stop)
            stop.wait()
        else:
            from picostim.panel import run_panel

            run_panel(sup.port, shown_port=path, stop=stop)
    finally:
        signal.signal(signal.SIGTERM, old)
        sup.stop()
        if link and os.path.islink(link):
            os.unlink(link)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def cmd_panel(args: argparse.Namespace) -> int:
    from picostim.panel import run_panel

    with resolve_port(args.port) as port:
        run_panel(port, bench=False if args.no_bench else None)
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    _console(args.port)
    return 0


def cmd_scpi(args: argparse.Namespace) -> int:
    with ScpiClient(args.port) as inst:
        for command in args.command:
            if "?" in command:
                print(inst.query(command))
            else:
                inst.write(command)
            inst.check(command)
    return 0


def cmd_capture(args: argparse.Namespace) -> int:
    from picostim.sim import VirtualBoard, VirtualBoardError

    try:
        vb = VirtualBoard.attach(args.port)
    except VirtualBoardError as exc:
        raise PicoStimError(
            "%s; capture records a virtual board's executed PIO output (start one with "
            "`picostim sim --link /tmp/ps --no-panel`)" % exc
        ) from None
    try:
        wf = vb.capture(args.duration)
    finally:
        vb.close()
    if args.vcd:
        wf.write_vcd(args.vcd)
        print("wrote %s (%d cycles, 8 ns each)" % (args.vcd, wf.cycles))
    if args.png:
        wf.write_png(args.png)
        print("wrote %s" % args.png)
    if not args.vcd and not args.png:
        for name in wf.names():
            print("%-6s %d edges" % (name, len(wf.edges(name))))
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from picostim.deploy import deploy

    deploy(args.port, board_dir=args.board_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="picostim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version="picostim " + __version__)
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("sim", help="run a virtual board")
    p.add_argument("--link", help="make this path a symlink to the board's serial port")
    p.add_argument("--no-panel", action="store_true", help="no panel: serve until Ctrl-C")
    p.add_argument("--uid", help="the board's unique id (16 hex digits)")
    p.add_argument(
        "--flash",
        metavar="FILE",
        help="the board's flash image, kept across runs (created with the firmware if missing)",
    )
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("panel", help="live front panel (status, outputs, SCPI console)")
    p.add_argument(
        "--port", default="auto", help="auto (default), id:<serial>, sim, a device path or URL"
    )
    p.add_argument(
        "--no-bench",
        action="store_true",
        help="treat a virtual board like a real one (no bench keys, no live trace)",
    )
    p.set_defaults(func=cmd_panel)

    p = sub.add_parser("console", help="interactive SCPI console")
    p.add_argument("--port", required=True)
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("scpi", help="send SCPI commands, print query replies")
    p.add_argument("--port", required=True)
    p.add_argument("command", nargs="+")
    p.set_defaults(func=cmd_scpi)

    p = sub.add_parser("capture", help="record a virtual board's outputs to VCD/PNG")
    p.add_argument("--port", required=True)
    p.add_argument("--duration", type=float, default=0.5, help="seconds (default 0.5)")
    p.add_argument("--vcd", help="VCD file for PulseView/GTKWave")
    p.add_argument("--png", help="PNG plot")
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("flash", help="deploy the firmware to a board with mpremote")
    p.add_argument(
        "--port",
        default="auto",
        help="auto (first Pico on USB), id:<usb serial> or a path (default: auto)",
    )
    p.add_argument("--board-dir", help="firmware directory (default: the repository's board/)")
    p.set_defaults(func=cmd_flash)

    add_tool_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.func in (cmd_scpi, cmd_capture):  # --port: auto, id:<serial>, sim, URL, path
            with resolve_port(args.port) as args.port:
                return int(args.func(args))
        return int(args.func(args))
    except ScpiError as exc:
        if args.debug:
            raise
        print("picostim: the instrument reported error %s" % exc, file=sys.stderr)
        return 1
    except PicoStimError as exc:
        if args.debug:
            raise
        print("picostim: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
