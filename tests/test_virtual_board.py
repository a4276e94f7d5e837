"""The virtual board itself: its serial bridge, its resets and its Ctrl-C, under stress.

Each test starts a board of its own: what it checks is that the board is never wedged, and a
wedged board must not take the rest of the suite with it. Time passes only while a condition
is polled against a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import serial
from support import read_until, wait_until

from picostim.pinmap import PINS
from picostim.sim import VirtualBoard

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
LEAD = PINS["LEAD_A"][0]


@pytest.fixture
def board(real_port: str | None) -> Iterator[VirtualBoard]:
    if real_port:
        pytest.skip("tests the virtual board itself")
    with VirtualBoard() as vb:
        yield vb


def answers(link: serial.Serial, timeout: float) -> float:
    """Ask *OPC? until the instrument answers; how long that took (fails at the deadline)."""
    t0 = time.monotonic()
    while time.monotonic() < t0 + timeout:
        link.write(b"*OPC?\n")
        line = link.readline()
        while line and line.strip() != b"1":
            line = link.readline()
        if line:
            return time.monotonic() - t0
    raise AssertionError("the board did not answer within %.0f s" % timeout)


def raw_repl(link: serial.Serial) -> None:
    """Into the raw REPL after a soft reboot, as mpremote gets there: main.py not running."""
    link.write(b"\r\x03")
    link.write(b"\r\x01")
    read_until(link, RAW_BANNER)
    link.write(b"\x04")
    read_until(link, RAW_BANNER)


def run(link: serial.Serial, code: str, timeout: float = 10.0) -> str:
    """Run code in the raw REPL; what it printed (fails on a traceback)."""
    link.write(code.encode() + b"\x04")
    out = read_until(link, b"\x04>", timeout)
    assert out.startswith(b"OK"), out
    printed, error = out[2:-2].split(b"\x04", 1)
    assert error == b"", error.decode(errors="replace")
    return printed.decode().strip()


# --------------------------------------------------------------------------- the bridge


def test_an_unread_input_flood_leaves_the_board_answering(board: VirtualBoard) -> None:
    """A host writes far more than any buffer holds and reads nothing: the port holds its
    write back (as a USB CDC endpoint does) instead of the bridge blocking on MicroPython's
    pty while MicroPython blocks on its replies. Once the host reads, the board answers."""
    with serial.Serial(board.port, timeout=0.2, write_timeout=60) as link:
        answers(link, 20)
        restarts = board.info()["restarts"]
        link.write(b"*IDN?\n" * 20000)  # returns once the board has taken most of it
        link.reset_input_buffer()
        took = answers(link, 10)
    # The firmware never stalled long enough for its watchdog either.
    assert board.info()["restarts"] == restarts
    print("answered %.2f s after the flood was written" % took)


# --------------------------------------------------------------------------- resets

# A state machine that toggles a lead pin every cycle: the executor runs it hundreds of times
# slower than real time, so it falls further behind every moment it runs.
TOGGLER = f"""\
import machine, rp2
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def toggle():
    set(pins, 1)
    set(pins, 0)
sm = rp2.StateMachine(0, toggle, set_base=machine.Pin({LEAD}))
sm.active(1)
"""


@pytest.mark.parametrize("how", ["power_cycle", "machine.reset"])
def test_a_reset_is_prompt_with_the_pio_executor_far_behind(board: VirtualBoard, how: str) -> None:
    """Running the PIO up to the reset would take minutes here: a reset drops what the
    executor cannot catch up within half a second and the board is back at once."""
    with serial.Serial(board.port, timeout=0.2) as link:
        raw_repl(link)
        run(link, TOGGLER)
        wait_until(lambda: board.info()["pio_behind_s"] > 0.2, 20, "executor 0.2 s behind")
        t0 = time.monotonic()
        if how == "power_cycle":
            done = threading.Thread(target=board.power_cycle, daemon=True)
            done.start()
            done.join(10)
            assert not done.is_alive(), "power_cycle() took over 10 s"
        else:
            link.write(b"import machine\nmachine.reset()\x04")
        link.reset_input_buffer()
        answers(link, 10)
        took = time.monotonic() - t0
    assert board.levels()[LEAD] == 0
    assert board.info()["pio_behind_s"] < 0.5  # real time again: nothing left running
    assert took < 5, "back after %.1f s" % took
    print("%s: answering %.2f s later" % (how, took))


def test_a_reset_keeps_what_the_host_was_already_given(board: VirtualBoard) -> None:
    """Bytes the host's select() has reported are its to read: taken back by a reset, they
    make pyserial fail with 'device reports readiness to read but returned no data'."""
    with serial.Serial(board.port, timeout=1) as link:
        answers(link, 20)
        link.write(b"*IDN?\n")
        wait_until(lambda: link.in_waiting, 5, "the reply in the host's buffer")
        board.power_cycle()
        assert link.readline().startswith(b"PicoStim,")


# --------------------------------------------------------------------------- Ctrl-C

# Mostly computing, now and then waiting 1 ms: the unix port would raise the interrupt in the
# middle of the computing (allocating, looking up strings: with MicroPython's heap or string
# lock taken), the rp2 port raises it between bytecodes.
BUSY = """\
import time
where = "busy"
print("running")
try:
    while True:
        where = "busy"
        for i in range(5000):
            s = str(i) + "x"
        where = "waiting"
        time.sleep_ms(1)
except KeyboardInterrupt:
    print(where)
"""


def test_ctrl_c_reaches_micropython_only_where_it_waits(board: VirtualBoard) -> None:
    """Where the unix port is when KeyboardInterrupt is raised: never in the busy part, four
    fifths of the loop, every time (with the interrupt raised anywhere, 5 in a row would be
    a 1 in 3000 chance)."""
    with serial.Serial(board.port, timeout=0.2) as link:
        raw_repl(link)
        for _ in range(5):
            link.write(BUSY.encode() + b"\x04")
            read_until(link, b"running\n")
            link.write(b"\x03")
            assert read_until(link, b"\x04>") == b"waiting\n\x04\x04>"
            assert run(link, "print(6 * 7)") == "42"


# An event line or a request that Ctrl-C cut short, as it still may be (a process that never
# waits gets its Ctrl-C after a grace time, wherever it is).
CUT_LINE = f"""\
import _simlink as L
class Cut:
    def __str__(self):
        raise KeyboardInterrupt
try:
    L.send("pinv", {LEAD}, Cut())
except KeyboardInterrupt:
    pass
print(L.request("dmacount", 0))
"""

UNREAD_REPLY = """\
import _simlink as L
class Once:
    def __init__(self, f):
        self.f = f
    def readline(self):
        L._rep = self.f
        raise KeyboardInterrupt
L._rep = Once(L._rep)
try:
    L.request("i2cscan")
except KeyboardInterrupt:
    pass
print(L.request("dmacount", 0))
"""


@pytest.mark.parametrize("code", [CUT_LINE, UNREAD_REPLY], ids=["cut-line", "unread-reply"])
def test_an_interrupted_hardware_access_leaves_the_link_in_step(
    board: VirtualBoard, code: str
) -> None:
    """The next request gets its own answer: not none (a line glued to the cut one) and not
    the interrupted request's."""
    with serial.Serial(board.port, timeout=0.2) as link:
        raw_repl(link)
        assert run(link, code) == "0"
        assert run(link, "print(6 * 7)") == "42"


def test_the_watchdog_counts_the_firmware_time_not_the_executor_lag(board: VirtualBoard) -> None:
    """Four leads at 10 kHz run slower than real time here, and the firmware's hardware
    accesses then wait for the executor to catch up (a capture holds it, too). On a Pico
    those accesses cost nothing, so the emulated watchdog must not reset a firmware that feeds
    it on every pass. This is how the timing benchmark plays its rounds."""
    with serial.Serial(board.port, timeout=30) as link:
        answers(link, 30)

        def command(line: bytes) -> None:
            link.write(line + b";*OPC?\n")
            assert link.readline().strip() == b"1"

        for _ in range(3):
            command(b"*RST")
            for ch in range(1, 5):
                for line in (b"SOUR%d:PULS:WIDT 10us;GAP 0", b"SOUR%d:FREQ 10kHz", b"OUTP%d ON"):
                    command(line % ch)
            cap = board.start_capture(0.2)
            command(b"OUTP:GLOB ON")
            wait_until(lambda: board.info()["pio_behind_s"] > 0.3, 30, "executor 0.3 s behind")
            command(b"OUTP:GLOB OFF")
            cap.result()
        command(b"*RST")
        link.write(b"SYST:ERR:ALL?;:SYST:RES:CAUS?\n")
        reply = link.readline().decode().strip()
    assert board.info()["restarts"] == 0
    assert reply == '0,"No error";POWER', reply
