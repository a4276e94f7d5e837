"""Builds PicoStim's hardware objects from the pin map; the only place that creates them.

Everything else receives these objects through constructors, so the same logic runs on the
Pico, on the virtual board and in unit tests with fakes.
"""

import machine
import rp2

from stim import pins
from stim.dac import Mcp4728
from stim.engine import Engine
from stim.lead import Lead
from stim.ringpool import RingPool


class Hardware:
    """The board's peripherals, plus `rest()`: every output to its safe level at once."""

    def __init__(self, machine_mod=machine, rp2_mod=rp2, rings=None):
        m = machine_mod
        self.machine = m
        self.led = m.Pin(pins.LED, m.Pin.OUT, value=0)
        self.arm = [m.Pin(p, m.Pin.OUT, value=0) for p in pins.ARM]
        self.sync = m.Pin(pins.SYNC, m.Pin.OUT, value=0)
        self.button = m.Pin(pins.BUTTON, m.Pin.IN, m.Pin.PULL_UP)
        self.interlock = m.Pin(pins.INTERLOCK, m.Pin.IN, m.Pin.PULL_DOWN)
        self.trigger = m.Pin(pins.TRIGGER, m.Pin.IN, m.Pin.PULL_DOWN)
        self.trigger_pin = pins.TRIGGER
        self._rises = 0
        self.trigger.irq(handler=self._on_rise, trigger=m.Pin.IRQ_RISING)
        self.i2c = m.I2C(pins.I2C_ID, scl=m.Pin(pins.I2C_SCL), sda=m.Pin(pins.I2C_SDA))
        self.dac = Mcp4728(self.i2c, pins.DAC_ADDR)
        self.rings = rings or RingPool()
        self.leads = [
            Lead(
                rp2_mod, i, i, pins.LEAD_A[i], pins.ARM[i], pins.INTERLOCK, rp2_mod.DMA, self.rings
            )
            for i in range(4)
        ]
        self.engine = Engine(m.mem32, self.leads, self.arm, rp2_mod, pins.SYNC, self.rings)
        self.rest()

    def _on_rise(self, pin):
        self._rises += 1  # an IRQ only counts: no allocation, no work

    def take_trigger_rises(self):
        """Rising edges of the trigger input since the last call."""
        n = self._rises
        self._rises = 0
        return n

    def uid(self):
        return "".join("%02x" % b for b in self.machine.unique_id())

    def rest(self):
        """Drive every output to rest: leads stopped, both pins of each lead low, current 0."""
        if self.leads:
            self.engine.halt()
        for a in self.arm:
            a.value(0)
        m = self.machine
        for p in pins.LEAD_A + pins.LEAD_B:
            m.Pin(p, m.Pin.OUT, value=0)
        self.sync = m.Pin(pins.SYNC, m.Pin.OUT, value=0)  # back from the sync PIO to SIO
        if getattr(self, "dac", None) is not None:
            self.dac.zero_all()


def build(rings=None):
    return Hardware(rings=rings)
