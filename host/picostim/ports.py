"""Find PicoStim boards the way mpremote finds devices: `auto`, `id:<serial>`, `sim`, URL, path.

    from picostim.ports import list_boards, resolve_port

    for board in list_boards():             # USB boards, then running virtual boards
        print(board.port, board.kind, board.serial)
    with resolve_port("id:e6614103") as port:   # a port ScpiClient, pyserial or PyVISA opens
        ...

Port specifications:

    auto               the first PicoStim: USB (Raspberry Pi VID 0x2E8A), then virtual boards
    id:<serial>        the board with this USB serial number (on a Pico, its unique id: the
                       third field of *IDN?) or virtual board uid; a unique prefix will do
    sim                a private virtual board, started for the `with` block and stopped after
    socket://host:port any pyserial URL (loop://, spy://, rfc2217://, ...), used as given
    /dev/ttyACM0, COM3 a device path (`port:<path>` also works, as in mpremote)

Every failure is a PicoStimError that says what was found and what to do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from picostim.client import PicoStimError

PICO_VID = 0x2E8A
SPEC_HELP = "auto (default), id:<serial>, sim, a device path or a pyserial URL"

NOT_FOUND_HINT = (
    "is it plugged in (running its firmware, not in BOOTSEL mode)? on Linux, are you in the "
    "dialout group? For a virtual board use --port sim, or start one with "
    "`picostim sim --link /tmp/ps --no-panel`"
)


@dataclass(frozen=True)
class BoardInfo:
    """A board found on this computer."""

    port: str
    """What to open: a device path (USB) or a pseudo-terminal path (virtual)."""
    serial: str
    """USB serial number (a Pico's unique id) or the virtual board's uid; "" if unknown."""
    kind: str
    """"usb" or "virtual"."""
    description: str = ""

    def label(self) -> str:
        """`port (id ...)`, for messages."""
        return "%s (%s %s)" % (self.port, self.kind, self.serial or "without serial number")


def usb_boards() -> list[BoardInfo]:
    """USB serial devices with the Raspberry Pi VID, sorted by port."""
    from serial.tools import list_ports

    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        if p.vid == PICO_VID:
            out.append(BoardInfo(str(p.device), p.serial_number or "", "usb", p.description or ""))
    return out


def virtual_boards() -> list[BoardInfo]:
    """Virtual boards running on this computer (they announce themselves while they run)."""
    from picostim.sim import registry

    return [
        BoardInfo(str(info["port"]), str(info["uid"]), "virtual", "virtual PicoStim")
        for info in registry.running()
    ]


def list_boards() -> list[BoardInfo]:
    """Every board found: USB ones first, then running virtual boards."""
    return usb_boards() + virtual_boards()


def describe(boards: list[BoardInfo]) -> str:
    """`found: a, b` or `no boards found`, for error messages."""
    if not boards:
        return "no boards found"
    return "found: " + ", ".join(b.label() for b in boards)


def by_id(serial: str, boards: list[BoardInfo] | None = None) -> BoardInfo:
    """The board whose serial number or uid is `serial` (any case) or starts with it."""
    boards = list_boards() if boards is None else boards
    want = serial.strip().lower()
    if not want:
        raise PicoStimError("id: needs a serial number, e.g. --port id:e6614103e7452d2f")
    exact = [b for b in boards if b.serial.lower() == want]
    matches = exact or [b for b in boards if b.serial.lower().startswith(want)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PicoStimError(
            "no board with id %s (%s): `picostim list` shows every board with its id"
            % (serial, describe(boards))
        )
    raise PicoStimError(
        "id %s is ambiguous: %d boards match (%s): give more digits of the id, or the port"
        % (serial, len(matches), ", ".join(b.label() for b in matches))
    )


def auto(boards: list[BoardInfo] | None = None) -> BoardInfo:
    """The first board: USB before virtual (as mpremote's `auto`)."""
    boards = list_boards() if boards is None else boards
    if not boards:
        raise PicoStimError("no PicoStim found: " + NOT_FOUND_HINT)
    return boards[0]


def _check_access(board: BoardInfo) -> None:
    if board.kind == "usb" and os.path.exists(board.port):
        if not os.access(board.port, os.R_OK | os.W_OK):
            raise PicoStimError(
                "no permission to open %s: on Linux, add yourself to the dialout group "
                "(sudo usermod -aG dialout $USER) and log in again" % board.port
            )


def find_port(spec: str = "auto") -> str:
    """The port to open for `spec` (every form but `sim`, which needs `resolve_port`)."""
    spec = spec.strip()
    if spec == "sim":
        raise PicoStimError("`sim` starts a board: use `with resolve_port('sim') as port:`")
    if spec == "auto":
        board = auto()
        _check_access(board)
        return board.port
    if spec.startswith("id:"):
        board = by_id(spec[3:])
        _check_access(board)
        return board.port
    path = spec[len("port:") :] if spec.startswith("port:") else spec
    if not path:
        raise PicoStimError("empty port: give %s" % SPEC_HELP)
    if "://" not in path and path.startswith("/") and not os.path.exists(path):
        raise PicoStimError(
            "no port %s: is the board plugged in (or the virtual board running)? "
            "`--port auto` finds one by itself (%s)" % (path, describe(list_boards()))
        )
    return path


@contextlib.contextmanager
def resolve_port(spec: str = "auto") -> Iterator[str]:
    """A port for the duration of a `with` block; `sim` runs a private virtual board for it.

    with resolve_port(args.port) as port:
        with ScpiClient(port) as inst:
            ...
    """
    if spec.strip() != "sim":
        yield find_port(spec)
        return
    from picostim.sim import VirtualBoard, VirtualBoardError

    try:
        board = VirtualBoard()
    except (VirtualBoardError, OSError) as exc:
        raise PicoStimError("cannot start a virtual board: %s" % exc) from None
    try:
        yield board.port
    finally:
        board.close()
