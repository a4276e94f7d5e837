"""Builds PicoStim's hardware objects from the pin map; the only place that creates them.

Everything else receives these objects through constructors, so the same logic runs on the
Pico, on the virtual board and in unit tests with fakes.
"""

import machine

from stim import pins


class Hardware:
    """The board's peripherals, plus `rest()`: every output to its safe level at once."""

    def __init__(self, machine_mod=machine):
        m = machine_mod
        self.machine = m
        self.led = m.Pin(pins.LED, m.Pin.OUT, value=0)
        self.arm = [m.Pin(p, m.Pin.OUT, value=0) for p in pins.ARM]
        self.sync = m.Pin(pins.SYNC, m.Pin.OUT, value=0)
        self.button = m.Pin(pins.BUTTON, m.Pin.IN, m.Pin.PULL_UP)
        self.interlock = m.Pin(pins.INTERLOCK, m.Pin.IN, m.Pin.PULL_DOWN)
        self.trigger = m.Pin(pins.TRIGGER, m.Pin.IN, m.Pin.PULL_DOWN)
        self.leads = []
        self.rest()

    def uid(self):
        return "".join("%02x" % b for b in self.machine.unique_id())

    def rest(self):
        """Drive every output to rest: leads stopped, both pins of each lead low."""
        for lead in self.leads:
            lead.stop_now()
        for a in self.arm:
            a.value(0)
        m = self.machine
        for p in pins.LEAD_A + pins.LEAD_B:
            m.Pin(p, m.Pin.OUT, value=0)
        self.sync.value(0)


def build():
    return Hardware()
