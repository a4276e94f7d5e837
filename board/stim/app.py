"""The firmware's main loop: serial commands, front-panel inputs, safety, watchdog.

Every way out of `run()` (exception, KeyboardInterrupt, return) first drives every output to
rest, because the PIO state machines would otherwise keep pulsing after Python stops.
"""

import gc
import time

import machine
import micropython

from stim import heap
from stim.hardware import build
from stim.instrument import Instrument
from stim.linebuf import LineBuffer
from stim.serial_port import SerialPort

_POLL_MS = 2  # longest wait for serial input: bounds button/interlock polling latency
_GC_MS = 1000  # collect garbage at least this often, in a quiet moment of the loop
_STALE_LINE_MS = 1000  # a partial line left this long (its host went away) is dropped
WATCHDOG_MS = 1000  # a main loop stuck this long resets the board into the rest state
_WATCHDOG_CTRL_CLR = 0x4005B000  # WATCHDOG CTRL, atomic clear alias
_WATCHDOG_ENABLE = 1 << 30
_CAUSES = {1: "POWER", 3: "WATCHDOG"}


def run(hw=None, port=None, reserve=None, rings=None):
    # Room to report an exception raised where the heap is locked (the unix port has none).
    emergency = getattr(micropython, "alloc_emergency_exception_buf", None)
    if emergency:
        emergency(100)
    hw = hw or build(rings)
    port = port or SerialPort()
    inst = Instrument(hw, _CAUSES.get(machine.reset_cause(), "SOFT"))
    lines = LineBuffer(256)
    gc.collect()
    # The block for operations that need memory in one piece (stim.heap), taken while the
    # load reserve still holds the bottom of the heap: it lands above everything built, out
    # of the way of the small objects, which fill the lowest holes first.
    heap.take()
    if reserve:
        reserve.clear()  # everything is built: hand the held block back as one free region
    gc.collect()
    heap.take()  # if there was no room above
    wdt = None
    try:
        inst.boot(time.ticks_ms())
        wdt = machine.WDT(timeout=WATCHDOG_MS)
        last_gc = last_rx = time.ticks_ms()
        while True:
            wdt.feed()
            port.wait(_POLL_MS)
            data = port.read_available()
            if not data and lines.pending():
                # A host that vanished mid-command must not glue its half line onto the
                # next host's first command.
                if time.ticks_diff(time.ticks_ms(), last_rx) > _STALE_LINE_MS:
                    lines.reset()
            if data:
                last_rx = time.ticks_ms()
                for item in lines.feed(data):
                    try:
                        reply = inst.execute(item, time.ticks_ms())
                        if reply is not None:
                            port.write_replies(reply)
                    except MemoryError:  # where no handler could catch it: report, go on
                        heap.release()
                        inst.out_of_memory()
                    heap.retake()  # if an operation could not: its room was still in use
            now = time.ticks_ms()
            try:
                inst.service(now)
            except MemoryError:
                heap.release()  # once more with the reserve free; a second failure rests all
                inst.service(now)
            heap.retake()  # if a safety reaction's log entry borrowed it
            if not data and time.ticks_diff(now, last_gc) >= _GC_MS:
                # Collect while idle, so garbage never piles up into a fragmented heap; take
                # the reserve back if the operation that used it could not.
                gc.collect()
                heap.take()
                last_gc = now
    finally:
        # Outputs to rest on every way out; KeyboardInterrupt and SystemExit still propagate.
        hw.rest()
        heap.release()  # the REPL that follows (file copies at mpremote's hands) needs it
        if wdt is not None:
            # Leaving the loop on purpose (Ctrl-C from mpremote, an error we report): stop the
            # watchdog, or it would reset the board under a file copy at the REPL.
            machine.mem32[_WATCHDOG_CTRL_CLR] = _WATCHDOG_ENABLE
