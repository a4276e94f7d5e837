"""The firmware's main loop: serial commands, front-panel inputs, safety, watchdog.

Every way out of `run()` (exception, KeyboardInterrupt, return) first drives every output to
rest, because the PIO state machines would otherwise keep pulsing after Python stops.
"""

import time

from stim.hardware import build
from stim.instrument import Instrument
from stim.linebuf import LineBuffer
from stim.serial_port import SerialPort

_POLL_MS = 2  # longest wait for serial input: bounds button/interlock polling latency


def run(hw=None, port=None):
    hw = hw or build()
    port = port or SerialPort()
    inst = Instrument(hw)
    lines = LineBuffer(256)
    try:
        inst.boot(time.ticks_ms())
        while True:
            port.wait(_POLL_MS)
            data = port.read_available()
            if data:
                for item in lines.feed(data):
                    reply = inst.execute(item, time.ticks_ms())
                    if reply is not None:
                        port.write_line(reply)
            inst.service(time.ticks_ms())
    finally:
        # Outputs to rest on every way out; KeyboardInterrupt and SystemExit still propagate.
        hw.rest()
