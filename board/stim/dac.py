"""MCP4728 quad 12-bit DAC: sets each lead's current through its voltage-to-current stage.

Reference build: internal 2.048 V reference, gain 1, so one code step is 0.5 mV, and the
current source turns 2.048 V into 6.144 mA (333.3 ohm): 1.5 uA per code. `present` is False
when no DAC answers on the bus; the firmware then still validates and reports amplitude, and
the outputs are logic-level only.
"""


class Mcp4728:
    def __init__(self, i2c, addr=0x60):
        self.i2c = i2c
        self.addr = addr
        try:
            self.present = addr in i2c.scan()
        except OSError:
            self.present = False
        self.codes = [0, 0, 0, 0]

    def set(self, channel, code):
        """Multi-write one channel: internal reference (VREF=1), normal power, gain 1."""
        self.codes[channel] = code
        if not self.present:
            return
        buf = bytes((0x40 | (channel << 1), 0x80 | (code >> 8), code & 0xFF))
        try:
            self.i2c.writeto(self.addr, buf)
        except OSError:
            self.present = False

    def zero_all(self):
        for ch in range(4):
            self.set(ch, 0)
