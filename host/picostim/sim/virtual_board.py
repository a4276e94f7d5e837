"""`VirtualBoard`: start a virtual PicoStim and control its simulated bench from Python.

    from picostim.sim import VirtualBoard
    with VirtualBoard() as vb:
        print(vb.port)              # a serial port path: pyserial, PyVISA, screen, mpremote
        vb.set_interlock(False)     # open the interlock loop
        wf = vb.capture(0.5)        # the executed PIO output over the next 0.5 s

The board runs in a supervisor process of its own; this object talks to it over a control
socket, so tests and notebooks never share a Python process with the simulation.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from picostim.pinmap import PINS
from picostim.sim import registry
from picostim.sim.waveform import Waveform


class VirtualBoardError(RuntimeError):
    pass


class VirtualBoard:
    """A running virtual board. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        uid: str | None = None,
        board_dir: str | Path | None = None,
        flash: str | Path | None = None,
    ) -> None:
        """Start a board. `flash`: its flash image file, kept after `close()` (created with
        the firmware of `board_dir` if missing); by default a fresh image in a temp dir."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="picostim-vb-"
        )
        cmd = [sys.executable, "-m", "picostim.sim.supervisor", "--workdir", self._tmp.name]
        if uid:
            cmd += ["--uid", uid]
        if board_dir:
            cmd += ["--board-dir", str(board_dir)]
        if flash:
            cmd += ["--flash", str(flash)]
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
        )
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            raise VirtualBoardError("the virtual board did not start (see the messages above)")
        self._connect(json.loads(line))

    @classmethod
    def attach(cls, port: str) -> VirtualBoard:
        """Control a virtual board that is already running (e.g. `picostim sim`) by its port."""
        info = registry.lookup(port)
        if info is None:
            raise VirtualBoardError("%s is not a running virtual board" % port)
        vb = cls.__new__(cls)
        vb._tmp = None
        vb._proc = None
        vb._connect(info)
        return vb

    def _connect(self, info: dict[str, Any]) -> None:
        self.port: str = info["port"]
        self.uid: str = info["uid"]
        self._control = info["control"]
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(self._control)
        self._file = self._sock.makefile("rwb")  # buffered: a capture reply is long
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- plumbing

    def _call(self, op: str, **kw: Any) -> Any:
        with self._lock:
            self._file.write((json.dumps({"op": op, **kw}) + "\n").encode())
            self._file.flush()
            line = self._file.readline()
        if not line:
            raise VirtualBoardError("the virtual board's supervisor has gone away")
        reply = json.loads(line)
        if not reply["ok"]:
            raise VirtualBoardError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        """Stop the board and every process it started (an attached board keeps running)."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        try:
            self._sock.close()
        except OSError:
            pass
        if self._proc is not None and self._proc.stdout:
            self._proc.stdout.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- the bench

    def info(self) -> dict[str, Any]:
        """The supervisor's view: `port`, `uid`, `pid`, `mp_pid` (the MicroPython process),
        `restarts`, `reset_cause`, and `pio_behind_s`, how far the PIO executor is behind
        real time (a program it runs slower than the chip would makes it fall behind)."""
        return self._call("info")

    def set_input(self, pin: int, level: int) -> None:
        self._call("set_input", pin=pin, level=level)

    def set_interlock(self, closed: bool) -> None:
        """Close (True) or open (False) the interlock loop."""
        self.set_input(PINS["INTERLOCK"], 1 if closed else 0)

    def press_button(self, seconds: float = 0.1) -> None:
        """Hold the on/off button down for `seconds`, then let it go."""
        self.set_input(PINS["BUTTON"], 0)
        time.sleep(seconds)
        self.set_input(PINS["BUTTON"], 1)

    def trigger(self, high_seconds: float = 0.001) -> None:
        """A rising edge on the trigger input, back low after `high_seconds`."""
        self.set_input(PINS["TRIGGER"], 1)
        time.sleep(high_seconds)
        self.set_input(PINS["TRIGGER"], 0)

    def inject_exception(self, text: str = "test") -> None:
        """Make the firmware's next pin read raise an exception it does not expect."""
        self._call("inject_exception", text=text)

    def power_cycle(self) -> None:
        self._call("power_cycle")

    def flash_info(self) -> dict[str, Any]:
        """The flash image: `path`, `writes` (block writes since the board started, power
        cycles included), `power_cuts` done, `writes_at_cut` (`writes` when the last one came)
        and `cut_armed` (writes left before the armed cut, or None)."""
        return self._call("flash")

    def flash_writes(self) -> int:
        """Block writes to the flash image since the board started (power cycles included)."""
        return int(self.flash_info()["writes"])

    def power_cuts(self) -> int:
        """How many armed power cuts have happened."""
        return int(self.flash_info()["power_cuts"])

    def cut_power_at_write(self, k: int | None) -> None:
        """Cut the power at the k-th block write from now (1 = the next one); None disarms.

        That write and all after it are not done: the MicroPython process is killed as it
        attempts it, then the board powers on again and boots from its flash image.
        """
        self._call("cut_power_at_write", k=k)

    def hang(self) -> None:
        """Freeze the firmware's main loop, as a bug would: only the watchdog can recover."""
        self._call("hang")

    def levels(self) -> list[int]:
        """Every GPIO's level now."""
        return self._call("levels")

    def capture(self, seconds: float) -> Waveform:
        """The waveform of every output over the next `seconds`, from the executed PIO."""
        return self._waveform(self._call("capture", seconds=seconds))

    def start_capture(self, seconds: float) -> Capture:
        """Begin recording now and return at once; `.result()` waits for the waveform.

        For what must be seen from its very start: begin the capture, then send the command.
        """
        self._call("capture_begin", seconds=seconds)
        return Capture(self)

    @staticmethod
    def _waveform(r: dict[str, Any]) -> Waveform:
        currents = {k: [tuple(p) for p in v] for k, v in r.get("currents", {}).items()}
        initial = {int(k): v for k, v in r["initial"].items()}
        return Waveform(r["t0"], r["t1"], initial, r["edges"], currents)


class Capture:
    """A capture under way (see `VirtualBoard.start_capture`)."""

    def __init__(self, vb: VirtualBoard) -> None:
        self._vb = vb

    def result(self) -> Waveform:
        return self._vb._waveform(self._vb._call("capture_end"))
